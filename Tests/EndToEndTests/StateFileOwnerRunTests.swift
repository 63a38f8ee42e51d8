import Foundation
import Glibc
import TestSupport
import Testing

/// `keyrotd run` refuses a state file or directory another user owns: exit 78
/// and a message naming the owner (see StateFileOwnerTests for the adapter).
@Suite struct StateFileOwnerRunTests {
    /// The shipped example with its state and control socket in `scratch`.
    static func config(in scratch: Scratch) throws -> (config: String, environment: [String: String]) {
        let (example, environment) = try CheckConfigTests.example(in: scratch)
        let text = try String(contentsOfFile: example, encoding: .utf8)
            .replacingOccurrences(
                of: "# state_file = \"/var/lib/keyrotd/state.json\"",
                with: "state_file = \"\(scratch.file("state/state.json"))\"")
            .replacingOccurrences(
                of: "# control_socket = \"/run/keyrotd/control.sock\"",
                with: "control_socket = \"\(scratch.file("control.sock"))\"")
        return (try scratch.write("run.toml", text), environment)
    }

    @Test func runRefusesAStateDirectorySomeoneElseOwns() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, environment) = try Self.config(in: scratch)
        #expect(mkdir(scratch.file("state"), 0o700) == 0)
        #expect(chown(scratch.file("state"), 65534, 65534) == 0)
        let result = try keyrotd(["run", "--config", config], environment: environment)
        #expect(result.status == 78, "\(result.stderr)")
        #expect(result.stderr.contains("state directory \(scratch.file("state")) is owned by nobody (uid 65534), neither root nor keyrotd's user"), "\(result.stderr)")
    }
}

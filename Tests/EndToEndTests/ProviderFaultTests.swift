import Foundation
import KeyRotation
import TestSupport
import Testing

/// Every kind of provider failure on every call keyrotd makes, injected into the
/// local server while `keyrotd run` rotates: the daemon retries (or blocks and
/// retries slowly), never deletes too early, and settles with every promise kept.
@Suite struct ProviderFaultTests {
    struct Call: Sendable {
        var name: String
        var method: String
        var path: String
    }

    static let calls = [
        Call(name: "create", method: "POST", path: "/v1/admin/api-keys"),
        Call(name: "list", method: "GET", path: "/v1/admin/api-keys"),
        Call(name: "verify", method: "GET", path: "/v1/models"),
        Call(name: "delete", method: "DELETE", path: "/v1/admin/api-keys/*"),
    ]

    /// (name, the server's fault spec as JSON). The HTTP timeout is 2 s in these runs.
    static let faults: [(String, String)] = [
        ("401", #"{"status": 401}"#),
        ("403", #"{"status": 403}"#),
        ("422", #"{"status": 422}"#),
        ("429 Retry-After 1", #"{"status": 429, "retry_after": 1}"#),
        ("500", #"{"status": 500}"#),
        ("delay past the timeout", #"{"delay": 3}"#),
        ("connection dropped", #"{"drop": true}"#),
        ("malformed JSON", #"{"malformed": true}"#),
    ]

    static let keys = ["alpha", "beta"]

    @Test func everyFaultOnEveryCallIsSurvived() async throws {
        var cases = Self.calls.flatMap { call in Self.faults.map { (call, $0.0, $0.1) } }
        cases.append((Self.calls[0], "connection dropped after the create", #"{"drop_after_create": true}"#))
        let failures = try await runConcurrently(cases) { call, name, fault in
            try await Self.survive(call: call, faultName: name, fault: fault)
        }
        #expect(failures.isEmpty, "\(failures.count) of \(cases.count) runs failed:\n\(failures.joined(separator: "\n"))")
        print("provider fault suite: \(cases.count) runs (\(Self.faults.count + 1) faults × calls), \(failures.count) failed")
    }

    static func survive(call: Call, faultName: String, fault: String) async throws -> String? {
        let label = "\(faultName) on \(call.name)"
        let fleet = try await Fleet(keys: keys, rotateEvery: "3s", overlap: "1s", providerExtra: "timeout = \"2s\"")
        defer { fleet.scratch.remove() }
        defer { fleet.server.stop() }
        guard try await waitFor(seconds: 30, { Set(deploys(in: fleet.scratch).map(\.key)) == Set(keys) }) else {
            fleet.daemon.signal(SIGKILL)
            return "\(label): no first keys:\n\(fleet.daemon.log().suffix(1500))"
        }
        // Twice in a row, so a retry meets it too.
        _ = try await fleet.server.control(.post, "/_control/faults", ["method": call.method, "path": call.path, "fault": try JSONSerialization.jsonObject(with: Data(fault.utf8)), "times": 2])
        let consumed = try await waitFor(seconds: 60) {
            (try await fleet.server.control(.get, "/_control/faults") as? [Any])?.isEmpty == true
        }
        guard consumed else {
            fleet.daemon.signal(SIGKILL)
            return "\(label): the fault was never hit:\n\(fleet.daemon.log().suffix(1500))"
        }
        // After the fault, every key completes another rotation (blocked steps retry every 3 s).
        let done = deploys(in: fleet.scratch).count
        let recovered = try await waitFor(seconds: 60) {
            let after = deploys(in: fleet.scratch).dropFirst(done)
            return keys.allSatisfy { key in after.filter { $0.key == key }.count >= 2 }
        }
        _ = try daemonConfig(
            in: fleet.scratch, server: fleet.server, keys: keys, hook: fleet.scratch.file("hooks/consumer"), rotateEvery: "1h",
            overlap: "1s", providerExtra: "timeout = \"2s\"")
        fleet.daemon.signal(SIGHUP)
        let settled = try await waitFor(seconds: 30) { try allIdle(config: fleet.config, keys: keys.count) }
        fleet.daemon.signal(SIGTERM)
        let stopped = await fleet.daemon.wait(timeout: .seconds(20))
        guard recovered, settled else { return "\(label): did not recover or settle:\n\(fleet.daemon.log().suffix(2000))" }
        guard stopped == 0 else { return "\(label): exit \(String(describing: stopped)) at SIGTERM" }
        try await checkSettledInvariants(scratch: fleet.scratch, server: fleet.server, config: fleet.config, keys: keys, overlap: 1)
        return nil
    }
}

import Foundation
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// Text from outside keyrotd reaches the operator's terminal escaped: a provider key
/// named with a terminal escape (`audit`), and a hook's stderr line carried in a
/// step's last error (`status`, `rotate --wait`). Before, both were printed raw.
@Suite struct TerminalEscapeTests {
    static let escape = "\u{1b}]0;owned\u{7}\u{1b}[2J"

    @Test func auditAndStatusEscapeWhatTheProviderAndHooksSay() async throws {
        let fleet = try await Fleet(
            extra: "[audit]\nevery = \"1h\"\n",
            seed: { server in
                _ = try await server.control(.post, "/_control/keys", ["name": "ci\(Self.escape)bot\u{202E}gpj.exe"])
            },
            moreHooks: { scratch in
                [try scratch.write("hooks/noisy", """
                    #!/bin/sh
                    [ "$KEYROTD_EVENT" = deploy ] || exit 0
                    printf 'consumer says \\033]0;owned\\007\\033[2J then fails\\n' >&2
                    exit 3

                    """, mode: 0o755)]
            })
        defer { fleet.scratch.remove() }
        #expect(try await waitFor(seconds: 30) {
            let status = try keyrotd(["status", "--config", fleet.config])
            return status.stdout.contains("hook_exit_3")
        }, "\(fleet.daemon.log())")

        let status = try keyrotd(["status", "--config", fleet.config])
        #expect(status.status == 0)
        #expect(status.stdout.contains(#"consumer says \x1B]0;owned\x07\x1B[2J then fails"#), "\(status.stdout.debugDescription)")
        let audit = try fleet.cli(["audit"])
        #expect(audit.status == 0, "\(audit)")
        #expect(audit.stdout.contains(#"ci\x1B]0;owned\x07\x1B[2Jbot\u{202E}gpj.exe"#), "\(audit.stdout.debugDescription)")
        for (what, output) in [("status", status.stdout), ("audit", audit.stdout), ("log", fleet.daemon.log())] {
            #expect(!output.unicodeScalars.contains { $0 == "\u{1b}" || $0 == "\u{7}" || $0 == "\u{202E}" },
                    "\(what) prints a control character raw")
        }
        #expect(await fleet.stop() == 0)
    }
}

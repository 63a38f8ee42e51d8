import Foundation
import Glibc
import TestSupport
import Testing

/// keyrotd rotates the gateway's upstream key every few seconds, through the shipped
/// gateway hook, while consumers stream: they never notice.
@Suite(.serialized) struct GatewayRotationTests {
    /// The shipped hook with its socket line pointed at the fixture's admin socket.
    static func gatewayHook(_ fixture: GatewayFixture) throws -> String {
        let shipped = try String(
            contentsOf: repositoryRoot.appendingPathComponent("scripts/hooks/gateway"), encoding: .utf8)
        let binaryDirectory = (gatewayBinary as NSString).deletingLastPathComponent
        var lines: [String] = []
        for line in shipped.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("SOCKET=") {
                lines.append("SOCKET=\(fixture.adminSocket)")
            } else if line.hasPrefix("GATEWAY=") {
                lines.append("GATEWAY=\(gatewayBinary)")
            } else {
                lines.append(String(line))
            }
        }
        _ = binaryDirectory
        return try fixture.scratch.write("hooks/gateway", lines.joined(separator: "\n"), mode: 0o755)
    }

    @Test func rotationsAndARevokeUnderFiftyStreamingConsumersFailNothing() async throws {
        let fixture = try GatewayFixture(
            roles: [TestRole(name: "analyst", upstreamKey: "dev-team", models: ["mistral-small-latest"], extra: "max_tokens = 64")],
            clients: [("alice", "analyst")])
        try await fixture.start()
        let hook = try Self.gatewayHook(fixture)
        var text = """
            [daemon]
            instance = "gwtest"
            state_file = "\(fixture.scratch.file("keyrotd/state.json"))"
            control_socket = "\(fixture.scratch.file("keyrotd/control.sock"))"
            [defaults]
            rotate_every = "3s"
            overlap = "1s"
            jitter = "0"
            hook_timeout = "5s"
            retry_initial = "1s"
            retry_max = "2s"
            blocked_retry = "3s"
            [providers.mistral]
            type = "mistral"
            base_url = "\(fixture.server.baseURL)"
            admin_key_file = "\(fixture.server.adminKeyFile)"
            requests_per_minute = 60000

            """
        text += keySection("dev-team", hooks: [hook])
        let keyrotdConfig = try fixture.scratch.write("keyrotd.toml", text)
        // Every secret the server issues from now on starts with a sentinel: wherever it
        // shows below, a secret leaked (scripts/test also looks for it in all test output).
        let sentinel = Sentinel()
        sentinel.record()
        _ = try await fixture.server.control(.post, "/_control/options", ["secret_prefix": sentinel.text])
        let keyrotd = try ChildProcess(
            keyrotdBinary, ["run", "--config", keyrotdConfig],
            environment: ["PATH": "/usr/bin:/bin", "TZ": "UTC", "SWIFT_BACKTRACE": "enable=no"],
            output: fixture.scratch.file("keyrotd.log"))
        defer { keyrotd.stop() }
        #expect(try await waitFor(seconds: 30) { (try? fixture.roleStatus("analyst"))?["upstream_key_generation"] != nil })
        _ = try await fixture.server.control(.post, "/_control/options", ["completion_tokens": 20, "tokens_per_second": 100])

        let seconds: Double = longTests ? 60 : 20
        let start = Date()
        let stop = StopFlag()
        async let load = fixture.streamLoad(consumers: 50, client: "alice") { stop.isSet }
        try await Task.sleep(for: .seconds(seconds / 2))
        let revoke = try runTool(
            keyrotdBinary, ["revoke", "dev-team", "--config", keyrotdConfig, "--wait", "--timeout", "30s"],
            environment: ["PATH": "/usr/bin:/bin"])
        #expect(revoke.status == 0, "\(revoke.output)")
        try await Task.sleep(for: .seconds(max(1, seconds - Date().timeIntervalSince(start))))
        stop.set()
        let outcome = await load

        let log = try await fixture.server.requestLog().filter { ($0["path"] as? String) == "/v1/chat/completions" }
        let keysUsed = Set(log.compactMap { $0["key_id"] as? String })
        let onDeletedKeys = log.filter { $0["key_deleted"] as? Bool == true }
        let refused = log.filter { ($0["status"] as? Int) != 200 }
        print("rotation under load: \(outcome.succeeded) streams, \(keysUsed.count) upstream keys, \(outcome.failed.count) failed, \(onDeletedKeys.count) sent with a deleted key, \(refused.count) refused upstream")
        #expect(outcome.failed.isEmpty, "\(outcome.failed.prefix(5))")
        #expect(outcome.succeeded > 200)
        #expect(keysUsed.count >= Int(seconds / 4), "too few rotations happened: \(keysUsed.count) keys")
        #expect(onDeletedKeys.isEmpty, "requests were sent upstream with a deleted key: \(onDeletedKeys.prefix(3))")
        #expect(refused.isEmpty, "the upstream refused requests: \(refused.prefix(3))")
        // No secret in either log, the gateway's command line or environment, or status.
        var places: [String: String] = [
            "gateway log": fixture.log(),
            "keyrotd log": (try? String(contentsOfFile: fixture.scratch.file("keyrotd.log"), encoding: .utf8)) ?? "",
            "status": try runTool(gatewayBinary, ["status", "--json", "--socket", fixture.adminSocket], environment: [:]).output,
        ]
        if let pid = fixture.process?.pid {
            for file in ["cmdline", "environ"] {
                places["/proc/gateway/\(file)"] = (try? String(contentsOfFile: "/proc/\(pid)/\(file)", encoding: .utf8)) ?? ""
            }
        }
        for (place, text) in places { #expect(!sentinel.occurs(in: Array(text.utf8)), "a secret leaked into \(place)") }
        let keysFile = try String(contentsOfFile: fixture.scratch.file("state/keys.state"), encoding: .utf8)
        #expect(sentinel.occurs(in: Array(keysFile.utf8)), "the sentinel did not reach the gateway: the check above proves nothing")
    }
}

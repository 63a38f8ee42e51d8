import Foundation
import Glibc
import TestSupport
import Testing
@testable import KeyRotation
@testable import KeyRotationAdapters

/// The example hooks in scripts/hooks, run through the real runner. The
/// configuration lines at their top are edited in a copy to point into a
/// temporary directory; kubectl, vault and systemctl are stand-ins that record
/// their argv and stdin. The gateway hook runs the real `keyrotd-gateway set-key`
/// against a stand-in admin socket (a gateway cannot run here).
@Suite struct HookExampleTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/hooks")

    static let examples = ["write-env-file", "systemd-credential", "kubernetes-secret", "vault-kv", "gateway"]

    /// A copy of the example with each `NAME=value` configuration line replaced.
    private func copy(_ example: String, into fixture: HookFixture, configuring settings: [String: String]) throws
        -> String
    {
        var lines = try String(contentsOf: Self.directory.appendingPathComponent(example), encoding: .utf8)
            .components(separatedBy: "\n")
        for (name, value) in settings {
            let index = try #require(lines.firstIndex { $0.hasPrefix(name + "=") }, "\(example) has no \(name)=")
            lines[index] = "\(name)='\(value)'"
        }
        let path = fixture.file(example)
        try writeRaw(Array(lines.joined(separator: "\n").utf8), to: path, mode: 0o755)
        return path
    }

    /// A stand-in command that appends its argv (one per line) and its stdin to files.
    private func standIn(_ name: String, in fixture: HookFixture, output: String = "") throws {
        try FileManager.default.createDirectory(atPath: fixture.file("bin"), withIntermediateDirectories: true)
        let script = """
            #!/bin/sh
            printf '%s\\n' "$@" >> '\(fixture.file("\(name).argv"))'
            cat >> '\(fixture.file("\(name).stdin"))'
            \(output)
            """
        try writeRaw(Array(script.utf8), to: fixture.file("bin/\(name)"), mode: 0o755)
    }

    @Test(arguments: examples)
    func exampleIsValidShellAndExecutable(_ example: String) throws {
        let path = Self.directory.appendingPathComponent(example).path
        #expect(access(path, X_OK) == 0)
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/bin/sh")
        check.arguments = ["-n", path]
        try check.run()
        check.waitUntilExit()
        #expect(check.terminationStatus == 0)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasPrefix("#!/bin/sh\n# keyrotd hook: "))
        #expect(text.contains("\nset -eu\n"))
    }

    @Test func writeEnvFileDeploysAtomicallyAndIdempotently() async throws {
        let fixture = try HookFixture()
        let target = fixture.file("env")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        let hook = try copy("write-env-file", into: fixture, configuring: ["ENV_DIR": target])
        let runner = fixture.runner()
        let expected = "MISTRAL_API_KEY=" + testSecret.withExposedText { $0 } + "\n"

        for _ in 0..<2 {
            let outcome = await runner.run(deploy(hook), provider: "mistral", timeout: .seconds(20))
            #expect(outcome == .succeeded)
            #expect(try fixture.text("env/dev-team.env") == expected)
            #expect(try permissions(of: target + "/dev-team.env") == 0o600)
            #expect(try FileManager.default.contentsOfDirectory(atPath: target) == ["dev-team.env"])
        }

        let before = try FileSnapshot(target + "/dev-team.env")
        #expect(await runner.run(retire(hook), provider: "mistral", timeout: .seconds(20)) == .succeeded)
        #expect(try FileSnapshot(target + "/dev-team.env") == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: target) == ["dev-team.env"])
    }

    @Test func writeEnvFileRefusesAKeyNameThatIsAPath() async throws {
        let fixture = try HookFixture()
        let target = fixture.file("env")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        let hook = try copy("write-env-file", into: fixture, configuring: ["ENV_DIR": target])
        var invocation = deploy(hook)
        invocation.key = "../escape"
        let outcome = await fixture.runner().run(invocation, provider: "mistral", timeout: .seconds(20))
        #expect(outcome.failure?.code == "hook_exit_1")
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.path).contains("escape.env") == false)
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).isEmpty)
    }

    @Test func systemdCredentialWritesTheFileThenRestartsTheUnit() async throws {
        let fixture = try HookFixture()
        let target = fixture.file("credentials")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        try standIn("systemctl", in: fixture)
        let hook = try copy(
            "systemd-credential", into: fixture,
            configuring: ["CREDENTIAL_DIR": target, "UNIT": "consumer.service", "SYSTEMCTL": fixture.file("bin/systemctl")])
        let outcome = await fixture.runner().run(deploy(hook), provider: "mistral", timeout: .seconds(20))
        #expect(outcome == .succeeded)
        #expect(try fixture.text("credentials/dev-team") == testSecret.withExposedText { $0 })
        #expect(try permissions(of: target + "/dev-team") == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: target) == ["dev-team"])
        #expect(try fixture.text("systemctl.argv") == "try-restart\n--\nconsumer.service\n")
    }

    @Test func kubernetesSecretPipesTheSecretAndNeverPassesItAsAnArgument() async throws {
        let fixture = try HookFixture()
        try standIn("kubectl", in: fixture, output: #"if [ "$1" = create ]; then echo "data: from-stdin"; fi"#)
        let hook = try copy(
            "kubernetes-secret", into: fixture,
            configuring: ["NAMESPACE": "prod", "NAME": "mistral", "KUBECONFIG": fixture.file("kubeconfig")])
        let runner = fixture.runner(searchPath: fixture.file("bin") + ":/usr/bin:/bin")
        let outcome = await runner.run(deploy(hook), provider: "mistral", timeout: .seconds(20))
        #expect(outcome == .succeeded)
        let secret = testSecret.withExposedText { $0 }
        #expect(try fixture.text("kubectl.stdin") == secret + "data: from-stdin\n")
        let argv = try fixture.text("kubectl.argv")
        #expect(!argv.contains(secret))
        #expect(argv.contains("--from-file=MISTRAL_API_KEY=/dev/stdin\n--dry-run=client\n"))
        #expect(argv.hasSuffix("apply\n--namespace\nprod\n-f\n-\n"))
    }

    @Test func vaultKVReadsTheValueFromStdinWithoutTheNewline() async throws {
        let fixture = try HookFixture()
        try standIn("vault", in: fixture)
        try writeRaw(Array("hvs.test-token".utf8), to: fixture.file("token"))
        let hook = try copy(
            "vault-kv", into: fixture,
            configuring: ["VAULT_TOKEN_FILE": fixture.file("token"), "SECRET_PATH": "kv/apps/mistral"])
        let runner = fixture.runner(searchPath: fixture.file("bin") + ":/usr/bin:/bin")
        let outcome = await runner.run(deploy(hook), provider: "mistral", timeout: .seconds(20))
        #expect(outcome == .succeeded)
        #expect(try fixture.text("vault.stdin") == testSecret.withExposedText { $0 })
        #expect(try fixture.text("vault.argv") == "kv\nput\nkv/apps/mistral\napi_key=-\n")
    }

    @Test(arguments: examples)
    func retireChangesNothing(_ example: String) async throws {
        let fixture = try HookFixture()
        let hook = try copy(example, into: fixture, configuring: [:])
        let outcome = await fixture.runner(searchPath: fixture.file("bin")).run(
            retire(hook), provider: "mistral", timeout: .seconds(20))
        #expect(outcome == .succeeded)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.path) == [example])
    }

    @Test func gatewayPipesTheSecretToSetKeyAndNeverPassesItAsAnArgument() async throws {
        let fixture = try HookFixture()
        let socket = try AdminSocketStandIn.bindOnly(fixture.file("admin.sock"))
        try standIn(
            "keyrotd-gateway", in: fixture,
            output: #"printf '%s %s\n' "$KEYROTD_KEY_ID" "$KEYROTD_GENERATION" > "\#(fixture.file("keyrotd-gateway.env"))""#)
        let hook = try copy("gateway", into: fixture, configuring: ["SOCKET": socket])
        // GATEWAY=keyrotd-gateway as shipped: found through keyrotd's PATH for hooks.
        let runner = fixture.runner(searchPath: fixture.file("bin") + ":/usr/bin:/bin")
        let outcome = await runner.run(deploy(hook), provider: "mistral", timeout: .seconds(20))
        #expect(outcome == .succeeded)
        let secret = testSecret.withExposedText { $0 }
        #expect(try fixture.text("keyrotd-gateway.stdin") == secret + "\n")
        #expect(try fixture.text("keyrotd-gateway.argv") == "set-key\ndev-team\n--socket\n\(socket)\n")
        #expect(try fixture.text("keyrotd-gateway.env") == "key-new 7\n")
    }

    /// The real `set-key` behind the hook: the stand-in socket sees the PUT the gateway
    /// would, with the secret as the body and key id and generation from keyrotd's
    /// hook environment.
    @Test func gatewayHandsTheKeyToTheAdminSocketThroughTheRealSetKey() async throws {
        let fixture = try HookFixture()
        let admin = try AdminSocketStandIn(socket: fixture.file("admin.sock"), record: fixture.file("request.json"))
        defer { admin.stop() }
        let hook = try copy("gateway", into: fixture, configuring: ["SOCKET": admin.socket, "GATEWAY": gatewayBinary])
        let outcome = await fixture.runner().run(deploy(hook), provider: "mistral", timeout: .seconds(20))
        #expect(outcome == .succeeded, "\(fixture.recorder.lines("stderr"))")
        let request = try #require(
            try JSONSerialization.jsonObject(with: Data(fixture.text("request.json").utf8)) as? [String: String])
        #expect(request["method"] == "PUT")
        #expect(request["path"] == "/v1/keys/dev-team")
        #expect(request["body"] == testSecret.withExposedText { $0 })
        #expect(request["key_id"] == "key-new")
        #expect(request["generation"] == "7")
        #expect(fixture.recorder.lines("stdout") == ["keyrotd-gateway: dev-team now uses key-new (generation 7)"])
    }

    @Test func gatewayFailsClearlyWhenTheAdminSocketIsMissing() async throws {
        let fixture = try HookFixture()
        try standIn("keyrotd-gateway", in: fixture)
        let socket = fixture.file("absent.sock")
        let hook = try copy("gateway", into: fixture, configuring: ["SOCKET": socket])
        let runner = fixture.runner(searchPath: fixture.file("bin") + ":/usr/bin:/bin")
        let outcome = await runner.run(deploy(hook), provider: "mistral", timeout: .seconds(20))
        #expect(outcome.failure?.code == "hook_exit_1")
        #expect(
            fixture.recorder.lines("stderr") == [
                "gateway: no gateway admin socket at \(socket): is keyrotd-gateway running (systemctl status keyrotd-gateway)?"
            ])
        #expect(!FileManager.default.fileExists(atPath: fixture.file("keyrotd-gateway.argv")))
    }

    @Test func gatewayFailsClearlyWhenTheBinaryIsNotOnThePath() async throws {
        let fixture = try HookFixture()
        let socket = try AdminSocketStandIn.bindOnly(fixture.file("admin.sock"))
        let hook = try copy("gateway", into: fixture, configuring: ["SOCKET": socket])
        let outcome = await fixture.runner(searchPath: fixture.file("bin")).run(
            deploy(hook), provider: "mistral", timeout: .seconds(20))
        #expect(outcome.failure?.code == "hook_exit_1")
        #expect(
            fixture.recorder.lines("stderr") == [
                "gateway: keyrotd-gateway not found (PATH=\(fixture.file("bin"))): set GATEWAY= in this hook to the binary's path"
            ])
    }

    /// A socket left behind by a gateway that is gone: the real set-key cannot
    /// connect and fails the hook with EX_UNAVAILABLE, saying where it tried.
    @Test func gatewayFailsWhenNobodyListensOnTheAdminSocket() async throws {
        let fixture = try HookFixture()
        let socket = try AdminSocketStandIn.bindOnly(fixture.file("admin.sock"))
        let hook = try copy("gateway", into: fixture, configuring: ["SOCKET": socket, "GATEWAY": gatewayBinary])
        let outcome = await fixture.runner().run(deploy(hook), provider: "mistral", timeout: .seconds(20))
        #expect(outcome.failure?.code == "hook_exit_69")
        let stderr = fixture.recorder.lines("stderr")
        #expect(stderr.contains { $0.hasPrefix("keyrotd-gateway set-key: cannot reach the gateway at \(socket)") }, "\(stderr)")
        let secret = testSecret.withExposedText { $0 }
        #expect(!fixture.recorder.all.contains { $0.message.contains(secret) })
    }
}

/// The gateway's admin socket, played by a small Python HTTP server: it records
/// the one request it gets (method, path, body, key id and generation headers) as
/// JSON and answers 200, as the gateway does once a key is durable.
final class AdminSocketStandIn {
    let socket: String
    private let process: ChildProcess

    private static let server = #"""
        import http.server, json, socketserver, sys
        path, record = sys.argv[1], sys.argv[2]
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_PUT(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with open(record, "w") as f:
                    json.dump({"method": "PUT", "path": self.path, "body": body.decode(),
                               "key_id": self.headers.get("Keyrotd-Key-Id"),
                               "generation": self.headers.get("Keyrotd-Generation")}, f)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
            def log_message(self, *arguments):
                pass
        class Server(socketserver.UnixStreamServer):
            def get_request(self):
                return self.socket.accept()[0], ("admin-socket", 0)
        Server(path, Handler).serve_forever()
        """#

    init(socket: String, record: String) throws {
        self.socket = socket
        process = try ChildProcess(
            "/usr/bin/python3", ["-c", Self.server, socket, record], environment: ["PATH": "/usr/bin:/bin"],
            output: record + ".log")
        guard Self.waitForSocket(socket) else {
            process.stop()
            throw POSIXError(.ETIMEDOUT)
        }
    }

    func stop() { process.stop() }

    /// A socket file nobody listens on (bound, then the process exits): what a
    /// gateway that died leaves behind.
    static func bindOnly(_ path: String) throws -> String {
        let binder = try ChildProcess(
            "/usr/bin/python3", ["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path],
            environment: ["PATH": "/usr/bin:/bin"], output: nil)
        while binder.poll() == nil { usleep(10_000) }
        guard waitForSocket(path) else { throw POSIXError(.ENOENT) }
        return path
    }

    private static func waitForSocket(_ path: String) -> Bool {
        for _ in 0..<500 {
            var info = stat()
            if stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK { return true }
            usleep(10_000)
        }
        return false
    }
}

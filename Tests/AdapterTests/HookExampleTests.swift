import Foundation
import Glibc
import Testing
@testable import KeyRotation
@testable import KeyRotationAdapters

/// The example hooks in scripts/hooks, run through the real runner. The
/// configuration lines at their top are edited in a copy to point into a
/// temporary directory; kubectl, vault and systemctl are stand-ins that record
/// their argv and stdin.
@Suite struct HookExampleTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/hooks")

    static let examples = ["write-env-file", "systemd-credential", "kubernetes-secret", "vault-kv"]

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
}

import Foundation
import TestSupport
import Testing

/// `keyrotd check-config` as an operator runs it, on real files.
@Suite struct CheckConfigTests {
    /// The shipped example with its hooks directory moved into `scratch`, and a
    /// credentials directory holding the admin key, as systemd would provide.
    static func example(in scratch: Scratch) throws -> (config: String, environment: [String: String]) {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("etc/keyrotd/keyrotd.toml"), encoding: .utf8)
        try scratch.write("hooks.d/write-env-file", "#!/bin/sh\ncat >/dev/null\n", mode: 0o755)
        try scratch.write("credentials/mistral-admin-key", "admin-key-for-tests\n", mode: 0o600)
        let config = try scratch.write(
            "keyrotd.toml", text.replacingOccurrences(of: "/etc/keyrotd/hooks.d/", with: scratch.file("hooks.d") + "/"))
        return (config, ["CREDENTIALS_DIRECTORY": scratch.file("credentials")])
    }

    @Test func theShippedExampleIsValid() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, environment) = try Self.example(in: scratch)
        let result = try keyrotd(["check-config", "--config", config], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "\(config): OK: 1 key (dev-team), provider mistral, state /var/lib/keyrotd/state.json\n")
        #expect(result.stderr.isEmpty)
    }

    @Test func aBadInstanceNameIsReportedWithItsPlace() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, environment) = try Self.example(in: scratch)
        let text = try String(contentsOfFile: config, encoding: .utf8)
        let edited = text.replacingOccurrences(of: "# instance = \"prod\" ", with: "instance = \"prod/eu\"")
        #expect(edited != text)
        try edited.write(toFile: config, atomically: true, encoding: .utf8)
        let line = try #require(edited.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("instance = ") }) + 1
        let result = try keyrotd(["check-config", "--config", config], environment: environment)
        #expect(result.status == 78)
        #expect(result.stderr.contains("\(config):\(line): daemon.instance: \"prod/eu\" is not a valid instance name"), "\(result.stderr)")
        // Valid, it is accepted.
        try text.replacingOccurrences(of: "# instance = \"prod\" ", with: "instance = \"prod-eu\"")
            .write(toFile: config, atomically: true, encoding: .utf8)
        #expect(try keyrotd(["check-config", "--config", config], environment: environment).status == 0)
    }

    @Test func outsideTheServiceTheCredentialIsAWarningNotAnError() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, _) = try Self.example(in: scratch)
        let result = try keyrotd(["check-config", "--config", config])
        #expect(result.status == 0)
        #expect(result.stderr.contains("warning: providers.mistral.admin_key_credential: the credential can only be checked inside the service"))
    }

    @Test func fileSystemProblemsAreAllReportedWithTheirPlace() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("hooks/ok", "#!/bin/sh\n", mode: 0o755)
        try scratch.write("hooks/not-executable", "#!/bin/sh\n", mode: 0o644)
        try scratch.write("hooks/group-writable", "#!/bin/sh\n", mode: 0o775)
        try FileManager.default.createDirectory(atPath: scratch.file("hooks/a-directory"), withIntermediateDirectories: true)
        try scratch.write("admin-key", "secret\n", mode: 0o644)
        let config = try scratch.write("keyrotd.toml", """
            [providers.mistral]
            type = "mistral"
            base_url = "http://127.0.0.1:8080"
            admin_key_file = "\(scratch.file("admin-key"))"

            [keys.alpha]
            provider = "mistral"
            workspace = "7f1e0c3a-5d1b-4c52-9a3e-2b7d8e6f4a10"
            user = "b52d9e10-3c4f-4e8a-8b1d-6a9f0c2e7d35"
            hooks = ["\(scratch.file("hooks/ok"))", "\(scratch.file("hooks/missing"))"]

            [keys.beta]
            provider = "mistral"
            workspace = "7f1e0c3a-5d1b-4c52-9a3e-2b7d8e6f4a10"
            user = "b52d9e10-3c4f-4e8a-8b1d-6a9f0c2e7d35"
            hooks = ["\(scratch.file("hooks/not-executable"))", "\(scratch.file("hooks/group-writable"))", "\(scratch.file("hooks/a-directory"))"]
            overlap = "100d"
            """)
        let result = try keyrotd(["check-config", "--config", config])
        #expect(result.status == 78)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        let expected = [
            "\(config):4: providers.mistral.admin_key_file: \(scratch.file("admin-key")) is accessible by group or others (mode 0644); chmod 600 it",
            "\(config):10: keys.alpha.hooks: hook \(scratch.file("hooks/missing")) does not exist",
            "\(config):16: keys.beta.hooks: hook \(scratch.file("hooks/not-executable")) is not executable (chmod +x)",
            "\(config):16: keys.beta.hooks: hook \(scratch.file("hooks/group-writable")) is writable by group or others (owner root (uid 0), mode 0775): whoever can change it chooses what runs and receives every new secret; chmod go-w \(scratch.file("hooks/group-writable"))",
            "\(config):16: keys.beta.hooks: hook \(scratch.file("hooks/a-directory")) is not a regular file",
            "\(config): 6 problems; configuration rejected",
        ]
        #expect(lines.count == expected.count + 1, "\(result.stderr)")
        for line in expected {
            #expect(lines.contains(line), "missing: \(line)\n---\n\(result.stderr)")
        }
        #expect(lines.contains { $0.hasPrefix("\(config):17: keys.beta.overlap: overlap (100d) must be shorter than rotate_every (90d)") })
    }

    /// Whoever can change a hook receives every secret: its owner, and whoever may
    /// write its directory.
    @Test func aHookSomeoneElseControlsIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, environment) = try Self.example(in: scratch)
        let hook = scratch.file("hooks.d/write-env-file")
        #expect(chown(hook, 65534, 65534) == 0)
        var result = try keyrotd(["check-config", "--config", config], environment: environment)
        #expect(result.status == 78)
        #expect(result.stderr.contains("is owned by nobody (uid 65534), neither root nor keyrotd's user"), "\(result.stderr)")

        #expect(chown(hook, 0, 0) == 0)
        #expect(chmod(scratch.file("hooks.d"), 0o777) == 0)
        result = try keyrotd(["check-config", "--config", config], environment: environment)
        #expect(result.status == 78)
        #expect(result.stderr.contains("\(scratch.file("hooks.d")) is writable by group or others (owner root (uid 0), mode 0777)"), "\(result.stderr)")

        #expect(chmod(scratch.file("hooks.d"), 0o755) == 0)
        let link = scratch.file("hooks.d/linked")
        #expect(symlink(hook, link) == 0)
        let linked = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "write-env-file\"", with: "linked\"")
        try scratch.write("linked.toml", linked)
        result = try keyrotd(["check-config", "--config", scratch.file("linked.toml")], environment: environment)
        #expect(result.status == 0, "a symlinked hook is judged by its target: \(result.stderr)")
    }

    @Test func anUnreadableCredentialIsAnErrorInsideTheService() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, _) = try Self.example(in: scratch)
        let result = try keyrotd(["check-config", "--config", config], environment: ["CREDENTIALS_DIRECTORY": scratch.file("nowhere")])
        #expect(result.status == 78)
        #expect(result.stderr.contains("providers.mistral.admin_key_credential: the credential named here, in \(scratch.file("nowhere")), does not exist"), "\(result.stderr)")
        #expect(!result.stderr.contains("mistral-admin-key"))
    }

    @Test func aMissingConfigFileIsAConfigurationError() throws {
        let result = try keyrotd(["check-config", "--config", "/nonexistent/keyrotd.toml"])
        #expect(result.status == 78)
        #expect(result.stderr.hasPrefix("/nonexistent/keyrotd.toml: cannot read: No such file or directory"))
    }

    @Test func aSyntaxErrorPointsAtLineAndColumn() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let config = try scratch.write("keyrotd.toml", "[defaults]\nrotate_every = \"90d\"\noverlap = 24h\n")
        let result = try keyrotd(["check-config", "--config", config])
        #expect(result.status == 78)
        #expect(result.stderr.hasPrefix("\(config):3:"), "\(result.stderr)")
    }

    @Test func usageErrorsExit64() throws {
        let result = try keyrotd(["check-config", "--frobnicate"])
        #expect(result.status == 64)
    }
}

import Foundation
import TestSupport
import Testing

/// `scripts/install` and `scripts/uninstall` into a staging DESTDIR: the tree they
/// leave, twice over, and the installed units (keyrotd's and the gateway's) checked
/// by `systemd-analyze`.
///
/// One test on purpose: install builds two release binaries (keyrotd-gateway with
/// SwiftNIO and BoringSSL takes tens of minutes on a cold `.build-install`), so
/// everything is checked on that one build.
@Suite struct InstallTests {
    static let products = ["keyrotd", "keyrotd-gateway"]

    @Test(.timeLimit(.minutes(60)))
    func installTwiceThenUninstall() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let stage = scratch.file("stage")
        let tree = StagedTree(root: stage)

        let first = try Scripts.run("install", destdir: stage, log: scratch.file("install-1.log"))
        try #require(first.status == 0, "scripts/install failed:\n\(first.tail)")

        // The binaries, the units pointing at them, and the rest of the systemd files.
        for product in Self.products {
            let unitPath = "/usr/local/lib/systemd/system/\(product).service"
            #expect(tree.mode("/usr/local/bin/\(product)") == 0o755, "\(product)")
            #expect(tree.mode(unitPath) == 0o644, "\(product)")
            let unit = try UnitFile(path: tree.path(unitPath))
            let config = product == "keyrotd" ? "keyrotd.toml" : "gateway.toml"
            #expect(unit.values("ExecStart") == ["/usr/local/bin/\(product) run --config /etc/keyrotd/\(config)"])
            #expect(tree.text(unitPath) == (try Repository.text("systemd/\(product).service")), "\(product)")
            #expect(tree.mode("/usr/local/lib/sysusers.d/\(product).conf") == 0o644, "\(product)")
            #expect(
                tree.text("/usr/local/lib/sysusers.d/\(product).conf")
                    == (try Repository.text("systemd/sysusers.d/\(product).conf")), "\(product)")
        }
        if let catalog = try? Repository.text("systemd/keyrotd.catalog") {
            #expect(tree.text("/usr/local/lib/systemd/catalog/keyrotd.catalog") == catalog)
            #expect(tree.mode("/usr/local/lib/systemd/catalog/keyrotd.catalog") == 0o644)
        }

        // Man pages and completions, generated from the argument parsers.
        for (product, subcommand) in [("keyrotd", "check-config"), ("keyrotd-gateway", "set-key")] {
            let manual = tree.text("/usr/local/share/man/man8/\(product).8") ?? ""
            #expect(manual.contains(".Dt \(product.uppercased()) 8"), "\(product)")
            #expect(manual.contains(subcommand), "\(product)")
            for (path, needle) in [
                ("/usr/local/share/bash-completion/completions/\(product)", product),
                ("/usr/local/share/zsh/site-functions/_\(product)", "#compdef \(product)"),
                ("/usr/local/share/fish/vendor_completions.d/\(product).fish", product),
            ] {
                #expect(tree.mode(path) == 0o644, "\(path)")
                #expect(tree.text(path)?.contains(needle) == true, "\(path)")
            }
        }

        // Example hooks, pristine, and the ones to use: the example configuration's and the gateway's.
        let hooks = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("scripts/hooks").path)
        #expect(!hooks.isEmpty)
        for hook in hooks {
            #expect(tree.mode("/usr/local/share/keyrotd/hooks/\(hook)") == 0o755, "\(hook)")
            #expect(tree.text("/usr/local/share/keyrotd/hooks/\(hook)") == (try Repository.text("scripts/hooks/\(hook)")), "\(hook)")
        }
        #expect(tree.mode("/etc/keyrotd") == 0o755)
        #expect(tree.mode("/etc/keyrotd/hooks.d") == 0o755)
        #expect(tree.mode("/etc/keyrotd/hooks.d/write-env-file") == 0o755)
        #expect(tree.mode("/etc/keyrotd/hooks.d/gateway") == 0o755)
        #expect(tree.text("/etc/keyrotd/hooks.d/gateway") == (try Repository.text("scripts/hooks/gateway")))
        #expect(tree.mode("/etc/keyrotd/keyrotd.toml") == 0o644)
        let exampleConfig = try Repository.text("etc/keyrotd/keyrotd.toml")
        #expect(tree.text("/etc/keyrotd/keyrotd.toml") == exampleConfig)
        #expect(exampleConfig.contains(#"hooks = ["/etc/keyrotd/hooks.d/write-env-file"]"#))
        // The gateway's holds no secret (token hashes only): world-readable like keyrotd's.
        #expect(tree.mode("/etc/keyrotd/gateway.toml") == 0o644)
        let exampleGatewayConfig = try Repository.text("etc/keyrotd/gateway.toml")
        #expect(tree.text("/etc/keyrotd/gateway.toml") == exampleGatewayConfig)

        // The manifest lists every file install owns, and none of the administrator's.
        let manifest = tree.manifest()
        for path in tree.regularFiles() where !path.hasPrefix("/etc/keyrotd/") {
            #expect(manifest.contains(path), "\(path) is not in the manifest")
        }
        #expect(!manifest.contains { $0.hasPrefix("/etc/keyrotd") })

        for product in Self.products {
            // The installed binary runs, statically linked against the Swift runtime.
            let binaryPath = tree.path("/usr/local/bin/\(product)")
            let help = try runTool(binaryPath, ["--help"], environment: ["PATH": "/usr/bin:/bin"])
            #expect(help.status == 0, "\(help)")
            #expect(help.stdout.contains("check-config"), "\(product)")
            let libraries = try runTool("/usr/bin/ldd", [binaryPath])
            #expect(!libraries.stdout.contains("libswiftCore"), "\(libraries)")
            // No failpoint can be switched on in the release binary: the code reading them is not there.
            let binary = try Data(contentsOf: URL(fileURLWithPath: binaryPath))
            #expect(binary.range(of: Data("KEYROTD_FAILPOINT".utf8)) == nil, "the release \(product) contains failpoint code")

            // The installed unit passes verify with the binary where DESTDIR put it; with
            // MANPATH at the staged man pages its Documentation=man:PRODUCT(8) resolves.
            let copy = try scratch.write(
                "check/\(product).service",
                try UnitFile.rewritingExecStart(
                    tree.text("/usr/local/lib/systemd/system/\(product).service") ?? "",
                    from: "/usr/local/bin/\(product)", to: binaryPath))
            let verify = try SystemdAnalyze.verify(copy, manPath: tree.path("/usr/local/share/man"))
            #expect(verify.status == 0 && verify.stderr.isEmpty && verify.stdout.isEmpty, "\(verify)")
            #expect(try SystemdAnalyze.exposure(copy) <= 1.5, "\(product)")
        }

        // The administrator's files: an edited config and hook, the admin key, state.
        let editedConfig = exampleConfig + "\n# edited by the administrator\n"
        try tree.write("/etc/keyrotd/keyrotd.toml", editedConfig, mode: 0o644)
        let editedGatewayConfig = exampleGatewayConfig + "\n# edited by the administrator\n"
        try tree.write("/etc/keyrotd/gateway.toml", editedGatewayConfig, mode: 0o644)
        let editedHook = (try Repository.text("scripts/hooks/write-env-file"))
            .replacingOccurrences(of: "ENV_DIR=/etc/keyrotd/env", with: "ENV_DIR=/srv/app/env")
        try tree.write("/etc/keyrotd/hooks.d/write-env-file", editedHook, mode: 0o755)
        try tree.write("/etc/keyrotd/mistral-admin-key", "admin-key\n", mode: 0o600)
        try tree.write("/var/lib/keyrotd/state.json", "{}\n", mode: 0o600)

        let second = try Scripts.run("install", destdir: stage, log: scratch.file("install-2.log"))
        try #require(second.status == 0, "second scripts/install failed:\n\(second.tail)")
        #expect(tree.text("/etc/keyrotd/keyrotd.toml") == editedConfig)
        #expect(tree.text("/etc/keyrotd/gateway.toml") == editedGatewayConfig)
        #expect(tree.text("/etc/keyrotd/hooks.d/write-env-file") == editedHook)
        #expect(tree.manifest() == manifest)

        let removal = try Scripts.run("uninstall", destdir: stage, log: scratch.file("uninstall-1.log"))
        try #require(removal.status == 0, "scripts/uninstall failed:\n\(removal.tail)")
        #expect(
            Set(tree.regularFiles()) == [
                "/etc/keyrotd/keyrotd.toml", "/etc/keyrotd/hooks.d/write-env-file",
                "/etc/keyrotd/gateway.toml", "/etc/keyrotd/hooks.d/gateway",
                "/etc/keyrotd/mistral-admin-key", "/var/lib/keyrotd/state.json",
            ])
        #expect(tree.text("/etc/keyrotd/keyrotd.toml") == editedConfig)
        #expect(tree.text("/etc/keyrotd/gateway.toml") == editedGatewayConfig)
        #expect(tree.text("/etc/keyrotd/hooks.d/write-env-file") == editedHook)
        #expect(tree.mode("/etc/keyrotd/mistral-admin-key") == 0o600)
        #expect(!FileManager.default.fileExists(atPath: tree.path("/usr/local/share/keyrotd")))

        let again = try Scripts.run("uninstall", destdir: stage, log: scratch.file("uninstall-2.log"))
        #expect(again.status == 0, "\(again.tail)")
    }
}

/// Files under a DESTDIR, addressed by their installed path.
struct StagedTree {
    var root: String

    func path(_ installed: String) -> String { root + installed }

    func mode(_ installed: String) -> Int? {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path(installed))
        return (attributes?[.posixPermissions] as? NSNumber)?.intValue
    }

    func text(_ installed: String) -> String? {
        try? String(contentsOfFile: path(installed), encoding: .utf8)
    }

    func write(_ installed: String, _ text: String, mode: Int) throws {
        let url = URL(fileURLWithPath: path(installed))
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
    }

    /// Installed paths of every regular file in the tree.
    func regularFiles() -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var files: [String] = []
        while let relative = walker.nextObject() as? String {
            if (walker.fileAttributes?[.type] as? FileAttributeType) == .typeRegular { files.append("/" + relative) }
        }
        return files.sorted()
    }

    /// The paths in install's manifest, comments left out.
    func manifest() -> Set<String> {
        let text = self.text("/usr/local/share/keyrotd/install-manifest") ?? ""
        return Set(text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") })
    }
}

enum Repository {
    static func text(_ relative: String) throws -> String {
        try String(contentsOf: repositoryRoot.appendingPathComponent(relative), encoding: .utf8)
    }
}

enum Scripts {
    struct Run {
        var status: Int32
        var log: String
        /// The end of the log, for a failure message.
        var tail: String { String(log.suffix(6000)) }
    }

    /// Runs `scripts/NAME` with DESTDIR (PREFIX default), output to `log`. Niced:
    /// the release build it starts shares two cores with the timing-sensitive tests.
    static func run(_ name: String, destdir: String, log: String) throws -> Run {
        var environment = ProcessInfo.processInfo.environment
        for key in ["PREFIX", "UNITDIR", "SYSUSERSDIR", "CATALOGDIR", "SCRATCH_PATH", "FORCE"] {
            environment[key] = nil
        }
        environment["DESTDIR"] = destdir
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nice")
        process.arguments = ["-n", "10", repositoryRoot.appendingPathComponent("scripts/\(name)").path]
        process.environment = environment
        process.currentDirectoryURL = repositoryRoot
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.run()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, log: (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }
}

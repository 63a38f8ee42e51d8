import Foundation
import TestSupport
import Testing

/// `scripts/install` and `scripts/uninstall` into a staging DESTDIR: the tree they
/// leave, twice over, and the installed unit checked by `systemd-analyze`.
///
/// One test on purpose: install builds a release binary (minutes on a cold
/// `.build-install`), so everything is checked on that one build.
@Suite struct InstallTests {
    @Test(.timeLimit(.minutes(30)))
    func installTwiceThenUninstall() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let stage = scratch.file("stage")
        let tree = StagedTree(root: stage)

        let first = try Scripts.run("install", destdir: stage, log: scratch.file("install-1.log"))
        try #require(first.status == 0, "scripts/install failed:\n\(first.tail)")

        // The binary, the unit pointing at it, and the rest of the systemd files.
        #expect(tree.mode("/usr/local/bin/keyrotd") == 0o755)
        #expect(tree.mode("/usr/local/lib/systemd/system/keyrotd.service") == 0o644)
        let unit = try UnitFile(path: tree.path("/usr/local/lib/systemd/system/keyrotd.service"))
        #expect(unit.values("ExecStart") == ["/usr/local/bin/keyrotd run --config /etc/keyrotd/keyrotd.toml"])
        #expect(tree.text("/usr/local/lib/systemd/system/keyrotd.service") == (try Repository.text("systemd/keyrotd.service")))
        #expect(tree.mode("/usr/local/lib/sysusers.d/keyrotd.conf") == 0o644)
        #expect(tree.text("/usr/local/lib/sysusers.d/keyrotd.conf") == (try Repository.text("systemd/sysusers.d/keyrotd.conf")))
        if let catalog = try? Repository.text("systemd/keyrotd.catalog") {
            #expect(tree.text("/usr/local/lib/systemd/catalog/keyrotd.catalog") == catalog)
            #expect(tree.mode("/usr/local/lib/systemd/catalog/keyrotd.catalog") == 0o644)
        }

        // Man page and completions, generated from the argument parser.
        let manual = tree.text("/usr/local/share/man/man8/keyrotd.8") ?? ""
        #expect(manual.contains(".Dt KEYROTD 8"))
        #expect(manual.contains("check-config"))
        for (path, needle) in [
            ("/usr/local/share/bash-completion/completions/keyrotd", "keyrotd"),
            ("/usr/local/share/zsh/site-functions/_keyrotd", "#compdef keyrotd"),
            ("/usr/local/share/fish/vendor_completions.d/keyrotd.fish", "keyrotd"),
        ] {
            #expect(tree.mode(path) == 0o644, "\(path)")
            #expect(tree.text(path)?.contains(needle) == true, "\(path)")
        }

        // Example hooks, pristine, and the one the example configuration names.
        let hooks = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("scripts/hooks").path)
        #expect(!hooks.isEmpty)
        for hook in hooks {
            #expect(tree.mode("/usr/local/share/keyrotd/hooks/\(hook)") == 0o755, "\(hook)")
            #expect(tree.text("/usr/local/share/keyrotd/hooks/\(hook)") == (try Repository.text("scripts/hooks/\(hook)")), "\(hook)")
        }
        #expect(tree.mode("/etc/keyrotd") == 0o755)
        #expect(tree.mode("/etc/keyrotd/hooks.d") == 0o755)
        #expect(tree.mode("/etc/keyrotd/hooks.d/write-env-file") == 0o755)
        #expect(tree.mode("/etc/keyrotd/keyrotd.toml") == 0o644)
        let exampleConfig = try Repository.text("etc/keyrotd/keyrotd.toml")
        #expect(tree.text("/etc/keyrotd/keyrotd.toml") == exampleConfig)
        #expect(exampleConfig.contains(#"hooks = ["/etc/keyrotd/hooks.d/write-env-file"]"#))

        // The manifest lists every file install owns, and none of the administrator's.
        let manifest = tree.manifest()
        for path in tree.regularFiles() where !path.hasPrefix("/etc/keyrotd/") {
            #expect(manifest.contains(path), "\(path) is not in the manifest")
        }
        #expect(!manifest.contains { $0.hasPrefix("/etc/keyrotd") })

        // The installed binary runs, statically linked against the Swift runtime.
        let help = try runTool(tree.path("/usr/local/bin/keyrotd"), ["--help"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(help.status == 0, "\(help)")
        #expect(help.stdout.contains("check-config"))
        let libraries = try runTool("/usr/bin/ldd", [tree.path("/usr/local/bin/keyrotd")])
        #expect(!libraries.stdout.contains("libswiftCore"), "\(libraries)")
        // No failpoint can be switched on in the release binary: the code reading them is not there.
        let binary = try Data(contentsOf: URL(fileURLWithPath: tree.path("/usr/local/bin/keyrotd")))
        #expect(binary.range(of: Data("KEYROTD_FAILPOINT".utf8)) == nil, "the release binary contains failpoint code")

        // The installed unit passes verify with the binary where DESTDIR put it;
        // with MANPATH at the staged man pages its Documentation=man:keyrotd(8) resolves.
        let copy = try scratch.write(
            "check/keyrotd.service",
            try UnitFile.rewritingExecStart(
                tree.text("/usr/local/lib/systemd/system/keyrotd.service") ?? "",
                from: "/usr/local/bin/keyrotd", to: tree.path("/usr/local/bin/keyrotd")))
        let verify = try SystemdAnalyze.verify(copy, manPath: tree.path("/usr/local/share/man"))
        #expect(verify.status == 0 && verify.stderr.isEmpty && verify.stdout.isEmpty, "\(verify)")
        #expect(try SystemdAnalyze.exposure(copy) <= 1.5)

        // The administrator's files: an edited config and hook, the admin key, state.
        let editedConfig = exampleConfig + "\n# edited by the administrator\n"
        try tree.write("/etc/keyrotd/keyrotd.toml", editedConfig, mode: 0o644)
        let editedHook = (try Repository.text("scripts/hooks/write-env-file"))
            .replacingOccurrences(of: "ENV_DIR=/etc/keyrotd/env", with: "ENV_DIR=/srv/app/env")
        try tree.write("/etc/keyrotd/hooks.d/write-env-file", editedHook, mode: 0o755)
        try tree.write("/etc/keyrotd/mistral-admin-key", "admin-key\n", mode: 0o600)
        try tree.write("/var/lib/keyrotd/state.json", "{}\n", mode: 0o600)

        let second = try Scripts.run("install", destdir: stage, log: scratch.file("install-2.log"))
        try #require(second.status == 0, "second scripts/install failed:\n\(second.tail)")
        #expect(tree.text("/etc/keyrotd/keyrotd.toml") == editedConfig)
        #expect(tree.text("/etc/keyrotd/hooks.d/write-env-file") == editedHook)
        #expect(tree.manifest() == manifest)

        let removal = try Scripts.run("uninstall", destdir: stage, log: scratch.file("uninstall-1.log"))
        try #require(removal.status == 0, "scripts/uninstall failed:\n\(removal.tail)")
        #expect(
            Set(tree.regularFiles()) == [
                "/etc/keyrotd/keyrotd.toml", "/etc/keyrotd/hooks.d/write-env-file",
                "/etc/keyrotd/mistral-admin-key", "/var/lib/keyrotd/state.json",
            ])
        #expect(tree.text("/etc/keyrotd/keyrotd.toml") == editedConfig)
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

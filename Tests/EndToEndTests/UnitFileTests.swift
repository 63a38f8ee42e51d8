import Foundation
import TestSupport
import Testing

/// The shipped units, checked offline by the real `systemd-analyze` (never systemd
/// itself): `verify` must print nothing, and `security --offline=yes` must rate
/// each sandbox at most 1.5 of 10.
@Suite struct UnitFileTests {
    static let unit = ShippedUnit.keyrotd.path

    @Test(arguments: ShippedUnit.all)
    func verifyPrintsNothing(_ shipped: ShippedUnit) throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        // verify checks that ExecStart='s binary exists: point it at the built one.
        let unit = try scratch.write(shipped.fileName, try shipped.text(execStart: shipped.binary))
        let result = try SystemdAnalyze.verify(unit)
        #expect(result.status == 0, "\(result)")
        // verify exits 0 on unknown keys and bad values; only stderr tells.
        #expect(result.stderr.isEmpty, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
    }

    /// Guards the test above: the same check does see a misspelt key.
    @Test(arguments: ShippedUnit.all)
    func verifyReportsAMisspeltKey(_ shipped: ShippedUnit) throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let text = try shipped.text(execStart: shipped.binary).replacingOccurrences(
            of: "\nNotifyAccess=main\n", with: "\nNotifyAcess=main\n")
        let unit = try scratch.write(shipped.fileName, text)
        let result = try SystemdAnalyze.verify(unit)
        #expect(result.stderr.contains("NotifyAcess"), "\(result)")
    }

    @Test(arguments: ShippedUnit.all)
    func securityExposureIsAtMost1point5(_ shipped: ShippedUnit) throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let unit = try scratch.write(shipped.fileName, try shipped.text(execStart: shipped.binary))
        let exposure = try SystemdAnalyze.exposure(unit)
        #expect(exposure <= 1.5)
    }

    /// The settings other parts of keyrotd rely on, pinned.
    @Test func unitKeepsItsContract() throws {
        let unit = try UnitFile(path: Self.unit)
        let expected: [(String, String)] = [
            ("Type", "notify"), ("NotifyAccess", "main"),
            ("ExecStart", "/usr/local/bin/keyrotd run --config /etc/keyrotd/keyrotd.toml"),
            ("ExecReload", "/bin/kill -HUP $MAINPID"),
            ("WatchdogSec", "30s"), ("Restart", "on-failure"), ("RestartSec", "5s"),
            ("RestartPreventExitStatus", "78"), ("TimeoutStopSec", "30s"),
            ("User", "keyrotd"), ("Group", "keyrotd"),
            ("StateDirectory", "keyrotd"), ("StateDirectoryMode", "0700"),
            ("RuntimeDirectory", "keyrotd"), ("RuntimeDirectoryMode", "0750"),
            ("UMask", "0077"), ("LimitCORE", "0"), ("Environment", "SWIFT_BACKTRACE=enable=no"),
            // Secrets never reach swap; no IPC object is shared with other services.
            ("MemorySwapMax", "0"), ("PrivateIPC", "yes"),
            ("LoadCredential", "mistral-admin-key:/etc/keyrotd/mistral-admin-key"),
            ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("MemoryDenyWriteExecute", "yes"),
            // libdispatch calls setpriority(), which the filter denies: EPERM, not SIGSYS.
            ("SystemCallErrorNumber", "EPERM"),
            ("WantedBy", "multi-user.target"),
        ]
        for (key, value) in expected {
            #expect(unit.values(key) == [value], "\(key)=")
        }
        // Hooks write only to the state and runtime directories unless a drop-in says otherwise.
        #expect(unit.values("ReadWritePaths").isEmpty)
        #expect(unit.values("CapabilityBoundingSet") == [""])
        #expect(unit.values("AmbientCapabilities") == [""])

        // The credential is the one the example configuration asks for.
        let config = try String(
            contentsOf: repositoryRoot.appendingPathComponent("etc/keyrotd/keyrotd.toml"), encoding: .utf8)
        #expect(config.contains("admin_key_credential = \"mistral-admin-key\""))
    }

    /// The gateway's settings the README, the hook and the gateway's own code rely on.
    @Test func gatewayUnitKeepsItsContract() throws {
        let unit = try UnitFile(path: ShippedUnit.gateway.path)
        let expected: [(String, String)] = [
            ("Type", "notify"), ("NotifyAccess", "main"),
            ("ExecStart", "/usr/local/bin/keyrotd-gateway run --config /etc/keyrotd/gateway.toml"),
            ("ExecReload", "/bin/kill -HUP $MAINPID"),
            // The gateway pings at half of WATCHDOG_USEC.
            ("WatchdogSec", "30s"), ("Restart", "on-failure"), ("RestartSec", "5s"),
            ("RestartPreventExitStatus", "78"), ("TimeoutStopSec", "30s"),
            ("User", "keyrotd-gateway"), ("Group", "keyrotd-gateway"),
            ("StateDirectory", "keyrotd-gateway"), ("StateDirectoryMode", "0700"),
            // keyrotd's user must reach the admin socket; the gateway checks SO_PEERCRED.
            ("RuntimeDirectory", "keyrotd-gateway"), ("RuntimeDirectoryMode", "0755"),
            ("UMask", "0077"), ("LimitCORE", "0"), ("Environment", "SWIFT_BACKTRACE=enable=no"),
            ("MemorySwapMax", "0"), ("PrivateIPC", "yes"),
            ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("MemoryDenyWriteExecute", "yes"),
            ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
            ("SystemCallErrorNumber", "EPERM"),
            ("WantedBy", "multi-user.target"),
        ]
        for (key, value) in expected {
            #expect(unit.values(key) == [value], "\(key)=")
        }
        #expect(unit.values("SystemCallFilter") == ["@system-service", "~@privileged @resources"])
        #expect(unit.values("CapabilityBoundingSet") == [""])
        #expect(unit.values("AmbientCapabilities") == [""])
        // SO_PEERCRED must see real user ids: no private user namespace.
        #expect(unit.values("PrivateUsers").isEmpty)
        // Nothing that could stop keyrotd when the gateway fails, or the other way round.
        for key in ["Requires", "BindsTo", "PartOf", "Requisite"] {
            #expect(unit.values(key).isEmpty, "\(key)=")
        }
    }

    /// The gateway hook, the gateway's unit and its example configuration name the
    /// same admin socket, and keyrotd's sandbox lets the hook connect to it: a Unix
    /// socket needs AF_UNIX and a visible path, not a writable one (connect() on a
    /// read-only mount works, as every sandboxed service's journal socket shows).
    @Test func keyrotdsHookCanReachTheGatewaysAdminSocket() throws {
        let keyrotd = try UnitFile(path: ShippedUnit.keyrotd.path)
        let gateway = try UnitFile(path: ShippedUnit.gateway.path)
        let socket = "/run/\(try #require(gateway.values("RuntimeDirectory").first))/admin.sock"
        let hook = try Repository.text("scripts/hooks/gateway")
        #expect(hook.contains("\nSOCKET=\(socket)\n"))
        let config = try Repository.text("etc/keyrotd/gateway.toml")
        #expect(config.contains("admin_socket = \"\(socket)\""))
        // keyrotd's user is admitted by the example configuration, and can traverse the directory.
        #expect(config.contains(#"admin_users = ["\#(try #require(keyrotd.values("User").first))"]"#))
        let mode = try #require(gateway.values("RuntimeDirectoryMode").first.flatMap { Int($0, radix: 8) })
        #expect(mode & 0o001 != 0)
        // keyrotd's sandbox: AF_UNIX allowed, /run neither hidden nor replaced.
        #expect(keyrotd.values("RestrictAddressFamilies").allSatisfy { $0.split(separator: " ").contains("AF_UNIX") })
        for key in ["InaccessiblePaths", "TemporaryFileSystem", "RootDirectory", "RootImage", "PrivateNetwork"] {
            #expect(keyrotd.values(key).allSatisfy { !$0.contains("/run") && $0 != "yes" }, "\(key)=")
        }
        // set-key's default is the same socket.
        let help = try runTool(ShippedUnit.gateway.binary, ["set-key", "--help"], environment: ["PATH": "/usr/bin:/bin"])
        let words = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(words.contains("--socket <path> The gateway's admin socket. (default: \(socket))"), "\(help)")
    }

    @Test(arguments: ShippedUnit.all)
    func sysusersCreatesTheUnitsUserWithTheStateDirectoryAsHome(_ shipped: ShippedUnit) throws {
        let lines = try String(contentsOfFile: shipped.sysusers, encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        #expect(lines.map(String.init) == [shipped.sysusersLine])
        let unit = try UnitFile(path: shipped.path)
        #expect(unit.values("User") == [shipped.name])
        #expect(unit.values("StateDirectory") == [shipped.name])
    }
}

/// A unit file in systemd/, its sysusers.d file and the built binary it starts.
struct ShippedUnit: Sendable, CustomTestStringConvertible {
    var name: String
    var binary: String
    var sysusersLine: String

    static let keyrotd = ShippedUnit(
        name: "keyrotd", binary: keyrotdBinary,
        sysusersLine: #"u keyrotd - "keyrotd key rotation daemon" /var/lib/keyrotd"#)
    static let gateway = ShippedUnit(
        name: "keyrotd-gateway", binary: gatewayBinary,
        sysusersLine: #"u keyrotd-gateway - "keyrotd-gateway API gateway" /var/lib/keyrotd-gateway"#)
    static let all = [keyrotd, gateway]

    var fileName: String { "\(name).service" }
    var path: String { repositoryRoot.appendingPathComponent("systemd/\(fileName)").path }
    var sysusers: String { repositoryRoot.appendingPathComponent("systemd/sysusers.d/\(name).conf").path }
    var testDescription: String { fileName }

    /// The shipped unit's text with ExecStart='s binary replaced by `binary`.
    func text(execStart binary: String) throws -> String {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try UnitFile.rewritingExecStart(text, from: "/usr/local/bin/\(name)", to: binary)
    }
}

/// A unit file's `Key=value` lines (all sections), enough for assertions.
struct UnitFile {
    var lines: [(key: String, value: String)]

    init(path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        lines = text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), !line.hasPrefix("["), let equals = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<equals]), String(line[line.index(after: equals)...]))
        }
    }

    func values(_ key: String) -> [String] {
        lines.filter { $0.key == key }.map(\.value)
    }

    static func rewritingExecStart(_ text: String, from old: String, to new: String) throws -> String {
        let marker = "\nExecStart=\(old) "
        try #require(text.contains(marker), "no ExecStart=\(old) in the unit")
        return text.replacingOccurrences(of: marker, with: "\nExecStart=\(new) ")
    }
}

/// The result of a finished tool run.
/// systemd's offline unit checks. A machine without `systemd-analyze` fails the
/// tests that need it: `scripts/setup` installs it (Debian package `systemd`).
enum SystemdAnalyze {
    static func path() throws -> String {
        let candidates = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        let found = candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
        return try #require(found, "systemd-analyze not found: run scripts/setup (it installs Debian's systemd package)")
    }

    /// A plain, predictable environment (`MANPATH` only if asked).
    static func environment(manPath: String? = nil) -> [String: String] {
        var environment = ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": ""]
        if let manPath { environment["MANPATH"] = manPath }
        return environment
    }

    /// `verify` of one unit file. Without `manPath` the Documentation=man: lookup is
    /// skipped (`--man=no`: the page is not installed on a build machine); with it,
    /// `man` must find the page there.
    static func verify(_ unit: String, manPath: String? = nil) throws -> ToolRun {
        let arguments = ["verify"] + (manPath == nil ? ["--man=no"] : []) + [unit]
        return try runTool(try path(), arguments, environment: environment(manPath: manPath))
    }

    /// `security --offline=yes --threshold=15`'s overall exposure (0–10), after
    /// checking that it exited 0 (at or under the threshold).
    static func exposure(_ unit: String) throws -> Double {
        let result = try runTool(
            try path(), ["security", "--offline=yes", "--threshold=15", unit], environment: environment())
        #expect(result.status == 0, "\(result)")
        let line = try #require(
            result.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") },
            "no overall exposure in: \(result)")
        // "→ Overall exposure level for keyrotd.service: 1.2 OK :-)" (or 🙂 on a terminal)
        let afterName = line.split(separator: ".service: ", maxSplits: 1).last
        let number = try #require(
            afterName?.split(separator: " ").first.flatMap { Double($0) },
            "cannot read the exposure in: \(line)")
        return number
    }
}

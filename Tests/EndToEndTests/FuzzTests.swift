import Foundation
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// Environment of every fuzzed run: a crash exits at once, without a backtrace.
private let quietCrashes = ["SWIFT_BACKTRACE": "enable=no"]

/// Mutated configurations through the real binary: `check-config` exits 0 with its
/// one-line summary or 78 with every problem as `file[:line[:column]]: message`,
/// never anything else (a trap shows as a signal), and `run` refuses a broken
/// configuration with 78 at once, creating nothing. A sample by default; every case
/// with `KEYROTD_LONG_TESTS=1`. The cheap in-process half, all cases always, is
/// `AdapterTests.ConfigFuzzTests`.
@Suite struct ConfigFuzzProcessTests {
    @Test func checkConfigExitsZeroOrExplainsWhy() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let fixture = try ConfigFuzzBases(in: scratch)
        let all = ConfigFuzzCase.cases(bases: fixture.bases, count: 600, seed: Fuzzing.seed)
        let cases = Fuzzing.sample(all, count: 150)
        print("check-config fuzz: \(cases.count) of \(all.count) mutations, seed \(Fuzzing.seedText)")
        let config = scratch.file("mutated.toml")
        var failures = 0
        for fuzzCase in cases where failures < 10 {
            try Data(fuzzCase.bytes).write(to: URL(fileURLWithPath: config))
            let result = try keyrotd(["check-config", "--config", config], environment: fixture.environment.merging(quietCrashes) { $1 })
            let violations = Self.violations(result, config: config)
            if !violations.isEmpty {
                failures += 1
                Issue.record("\(violations.joined(separator: "\n"))\n\(fuzzCase)\n\(Self.clipped(result))")
            }
        }
    }

    @Test func runRefusesABrokenConfigAtOnceAndCreatesNothing() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let logs = try Scratch()
        defer { logs.remove() }
        let fixture = try ConfigFuzzBases(in: scratch)
        let config = scratch.file("mutated.toml")
        let all = ConfigFuzzCase.cases(bases: fixture.bases, count: 600, seed: Fuzzing.seed)
        let broken = try all.filter { fuzzCase in
            try Data(fuzzCase.bytes).write(to: URL(fileURLWithPath: config))
            return ConfigLoader.load(path: config, environment: fixture.environment).configuration == nil
        }
        let cases = Fuzzing.spread(broken, count: Fuzzing.long ? 150 : 25)
        print("run on broken configurations: \(cases.count) of \(broken.count), seed \(Fuzzing.seedText)")
        var failures = 0
        for (number, fuzzCase) in cases.enumerated() where failures < 5 {
            try Data(fuzzCase.bytes).write(to: URL(fileURLWithPath: config))
            let before = try Self.listing(scratch.path)
            let started = ContinuousClock.now
            let daemon = try DaemonProcess(
                config: config, logPath: logs.file("run-\(number).log"),
                environment: fixture.environment.merging(quietCrashes) { $1 })
            let status = await daemon.wait(timeout: .seconds(10))
            let elapsed = ContinuousClock.now - started
            let created = try Self.listing(scratch.path).subtracting(before)
            if status != 78 || elapsed > .seconds(5) || !created.isEmpty {
                failures += 1
                Issue.record("""
                    run exited \(status.map(String.init) ?? "not at all") after \(elapsed) \
                    (expected 78 at once)\(created.isEmpty ? "" : ", creating \(created.sorted())")
                    \(fuzzCase)
                    --- log
                    \(daemon.log().prefix(2000))
                    """)
            }
        }
    }

    /// What `check-config` did wrong, if anything.
    static func violations(_ result: Outcome, config: String) -> [String] {
        let errorLines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        var found: [String] = []
        if !result.stderr.isEmpty && !result.stderr.hasSuffix("\n") { found.append("stderr does not end a line") }
        for line in errorLines where !line.hasPrefix("\(config):") {
            found.append("a stderr line that does not start with the file: \(line.debugDescription)")
        }
        switch result.status {
        case 0:
            if !(result.stdout.hasPrefix("\(config): OK: ") && result.stdout.filter(\.isNewline).count == 1
                && result.stdout.hasSuffix("\n")) {
                found.append("exit 0 without the one-line summary")
            }
            if let line = errorLines.first(where: { !$0.contains(": warning: ") }) {
                found.append("exit 0 with an error on stderr: \(line)")
            }
        case 78:
            if !result.stdout.isEmpty { found.append("exit 78 with output on stdout") }
            let problems = errorLines.filter { !$0.hasSuffix("; configuration rejected") && !$0.contains(": warning: ") }
            if problems.isEmpty { found.append("exit 78 without a problem on stderr") }
            for line in problems where Self.message(of: line, config: config).allSatisfy(\.isWhitespace) {
                found.append("a problem without a message: \(line.debugDescription)")
            }
            if errorLines.last?.hasSuffix("; configuration rejected") != true {
                found.append("exit 78 without the closing count")
            }
        default:
            found.append("exit \(result.status): neither 0 nor 78 (a signal if below 64)")
        }
        return found
    }

    /// The message of `file[:line[:column]]: [path: ]message`.
    static func message(of line: String, config: String) -> Substring {
        var rest = line.dropFirst(config.count + 1)
        for _ in 0..<2 {
            let digits = rest.prefix(while: \.isNumber)
            guard !digits.isEmpty, rest.dropFirst(digits.count).first == ":" else { break }
            rest = rest.dropFirst(digits.count + 1)
        }
        return rest.drop { $0 == " " }
    }

    static func clipped(_ result: Outcome) -> String {
        "exit \(result.status)\n--- stdout\n\(result.stdout.prefix(1000))\n--- stderr\n\(result.stderr.prefix(3000))"
    }

    /// Every path under `directory`, relative to it.
    static func listing(_ directory: String) throws -> Set<String> {
        Set(FileManager.default.enumerator(atPath: directory)?.compactMap { $0 as? String } ?? [])
    }
}

/// A real state file, damaged (truncated at every offset, bytes flipped, runs
/// garbled), through the real binary: `status` and `run` each exit 78 naming the
/// file, `run` never gets as far as READY, and the file keeps its bytes, mode,
/// inode and modification time; no temporary file is left, and the lock file
/// `run` takes stays an empty private file. A sample by default; every damage
/// with `KEYROTD_LONG_TESTS=1`. All damages in-process: `AdapterTests.StateCorruptionTests`.
@Suite struct StateCorruptionProcessTests {
    @Test func statusAndRunRefuseADamagedStateFileAndLeaveItAsItWas() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let logs = try Scratch()
        defer { logs.remove() }
        let (config, state) = try Self.fixture(in: scratch)
        let original = try Array(Data(contentsOf: URL(fileURLWithPath: state)))
        let headerSize = (original.firstIndex(of: 0x0A) ?? 0) + 1
        let all = StateDamage.all(size: original.count, headerSize: headerSize, flips: 600, garbles: 40, seed: Fuzzing.seed)
        let damages = Fuzzing.sample(all.filter { if case .truncate = $0 { true } else { false } }, count: 30)
            + Fuzzing.sample(all.filter { if case .flip = $0 { true } else { false } }, count: 30)
            + Fuzzing.sample(all.filter { if case .garble = $0 { true } else { false } }, count: 5)
        print("state corruption through the binary: \(damages.count) of \(all.count) damages, seed \(Fuzzing.seedText)")
        let notify = try NotifySocket(path: scratch.file("notify.sock"))
        let environment = ["NOTIFY_SOCKET": notify.path].merging(quietCrashes) { $1 }
        var failures = 0
        for (number, damage) in damages.enumerated() where failures < 5 {
            let bytes = damage.apply(to: original)
            guard bytes != original else { continue }
            try Data(bytes).write(to: URL(fileURLWithPath: state))
            chmod(state, 0o600)
            let before = try Self.identity(state)
            var problems: [String] = []

            let status = try keyrotd(["status", "--config", config], environment: quietCrashes)
            if status.status != 78 || !status.stderr.contains(state) || !status.stdout.isEmpty {
                problems.append("status: exit \(status.status), expected 78 naming the file\n\(status.stderr.prefix(1000))")
            }

            let daemon = try DaemonProcess(config: config, logPath: logs.file("run-\(number).log"), environment: environment)
            let exit = await daemon.wait(timeout: .seconds(10))
            if exit != 78 || !daemon.log().contains(state) {
                problems.append("run: exit \(exit.map(String.init) ?? "none in 10 s"), expected 78 naming the file\n\(daemon.log().prefix(1000))")
            }
            while let message = notify.receive(timeout: .zero) {
                if message.contains("READY=1") { problems.append("run: sent READY=1") }
            }

            if try Self.identity(state) != before { problems.append("the state file changed") }
            let entries = try FileManager.default.contentsOfDirectory(atPath: scratch.file("state")).sorted()
            if entries != ["state.json", "state.json.lock"] { problems.append("the state directory holds \(entries)") }
            let lock = try FileManager.default.attributesOfItem(atPath: state + ".lock")
            if lock[.size] as? Int != 0 || lock[.posixPermissions] as? Int != 0o600 {
                problems.append("the lock file is not an empty 0600 file: \(lock)")
            }
            if !problems.isEmpty {
                failures += 1
                Issue.record("seed \(Fuzzing.seedText), \(damage):\n\(problems.joined(separator: "\n"))")
            }
        }
    }

    /// Four keys at the provider on 127.0.0.1 port 9 (nothing listens: were `run`
    /// to start, it would reach nothing), and the state file the adapter writes for
    /// `StateFixture`'s document, mid-rotation.
    static func fixture(in scratch: Scratch) throws -> (config: String, state: String) {
        let hook = try scratch.write("hooks/deploy", "#!/bin/sh\ncat >/dev/null\n", mode: 0o755)
        let adminKey = try scratch.write("admin-key", "admin-key-for-tests\n", mode: 0o600)
        let state = scratch.file("state/state.json")
        var text = """
            [daemon]
            state_file = "\(state)"
            control_socket = "\(scratch.file("control.sock"))"
            [providers.mistral]
            type = "mistral"
            base_url = "http://127.0.0.1:9"
            admin_key_file = "\(adminKey)"

            """
        for key in ["alpha", "beta", "gamma-prod", "delta"] {
            text += keySection(key, hooks: [hook])
        }
        let config = try scratch.write("keyrotd.toml", text)
        let file = StateFile(path: state)
        try file.prepareDirectory()
        try file.save(body: try StateFixture.document().encoded(), version: StateDocument.schemaVersion)
        return (config, state)
    }

    /// What a refused load must not change: bytes, mode, inode, modification time.
    static func identity(_ path: String) throws -> [String] {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        return [
            bytes.base64EncodedString(), "\(attributes[.posixPermissions] ?? "")",
            "\(attributes[.systemFileNumber] ?? "")", "\((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)",
        ]
    }
}

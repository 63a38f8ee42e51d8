import Foundation
import Glibc
import Logging
import Synchronization
import Testing
@testable import KeyRotation
@testable import KeyRotationAdapters

/// One log call as a handler saw it, with the handler's and the call's metadata merged.
struct LogRecord: Sendable {
    var level: Logger.Level
    var message: String
    var metadata: [String: String]

    var stream: String? { metadata["stream"] }
}

/// Collects what a `RecordingLogHandler` logs; shared by its copies.
final class LogRecorder: Sendable {
    private let records = Mutex<[LogRecord]>([])

    var all: [LogRecord] { records.withLock { $0 } }

    func append(_ record: LogRecord) { records.withLock { $0.append(record) } }

    /// The output lines of one stream, in order.
    func lines(_ stream: String) -> [String] {
        all.filter { $0.stream == stream }.map(\.message)
    }

    var logger: Logger {
        Logger(label: "keyrotd.hooks.test") { _ in RecordingLogHandler(recorder: self) }
    }
}

/// A value-type LogHandler writing into a `LogRecorder` (no LoggingSystem.bootstrap).
struct RecordingLogHandler: LogHandler {
    let recorder: LogRecorder
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        recorder.append(LogRecord(
            level: event.level, message: event.message.description,
            metadata: merged.mapValues { $0.description }))
    }
}

/// A temporary directory holding hook scripts and the files they write.
final class HookFixture {
    let directory: TemporaryDirectory
    let recorder = LogRecorder()

    init() throws {
        directory = try TemporaryDirectory()
    }

    var path: String { directory.path }

    func file(_ name: String) -> String { directory.file(name) }

    /// Writes an executable `/bin/sh` script; `body` may use `$DIR` for this directory.
    func script(_ name: String, _ body: String) throws -> String {
        let path = file(name)
        let text = "#!/bin/sh\nDIR='\(self.path)'\n" + body + "\n"
        try writeRaw(Array(text.utf8), to: path, mode: 0o755)
        return path
    }

    func runner(
        killGrace: Duration = .seconds(1), outputLimit: Int = 64 * 1024,
        searchPath: String = HookRunner.defaultSearchPath
    ) -> HookRunner {
        HookRunner(logger: recorder.logger, searchPath: searchPath, killGrace: killGrace, outputLimit: outputLimit)
    }

    func text(_ name: String) throws -> String {
        String(decoding: try readBytes(file(name)), as: UTF8.self)
    }

    /// A pid a hook wrote to `name` with `echo $! > "$DIR/name"`.
    func pid(_ name: String) throws -> pid_t {
        let text = try self.text(name).trimmingCharacters(in: .whitespacesAndNewlines)
        return try #require(pid_t(text), "no pid in \(name): \(text)")
    }
}

let testSecret = Secret("sk-test-9f8e7d6c5b4a39281706")

func deploy(_ path: String, secret: Secret? = testSecret, oldKeyID: String? = "key-old") -> HookInvocation {
    HookInvocation(
        path: path, event: .deploy, key: "dev-team", keyID: "key-new", oldKeyID: oldKeyID, generation: 7,
        secret: secret)
}

func retire(_ path: String) -> HookInvocation {
    HookInvocation(
        path: path, event: .retire, key: "dev-team", keyID: "key-old", oldKeyID: nil, generation: 7, secret: nil)
}

extension HookOutcome {
    var failure: StepFailure? {
        if case .failed(let failure) = self { return failure }
        return nil
    }
}

/// True when `pid` no longer runs: no such process, a zombie (here pid 1 does not
/// reap orphans), or the pid now belongs to another program than `command`.
func isGone(_ pid: pid_t, command: String = "sleep") -> Bool {
    guard let stat = try? readBytes("/proc/\(pid)/stat"),
        let close = stat.lastIndex(of: UInt8(ascii: ")")), close + 2 < stat.count
    else { return true }
    if stat[close + 2] == UInt8(ascii: "Z") { return true }
    let commandLine = (try? readBytes("/proc/\(pid)/cmdline")) ?? []
    return !String(decoding: commandLine, as: UTF8.self).hasPrefix(command)
}

/// Waits (up to 5 s) for the kernel to finish killing `pids`; true when all are gone.
func allGone(_ pids: [pid_t], command: String = "sleep") async -> Bool {
    let deadline = ContinuousClock.now + .seconds(5)
    while ContinuousClock.now < deadline {
        if pids.allSatisfy({ isGone($0, command: command) }) { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return pids.allSatisfy { isGone($0, command: command) }
}

/// Waits (up to `limit`) until `condition` holds.
func eventually(within limit: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

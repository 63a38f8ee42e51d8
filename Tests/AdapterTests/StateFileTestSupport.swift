import Foundation
import Glibc
import Synchronization
import Testing

/// A fresh directory under /tmp, removed with everything in it when released.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/keyrotd-statefile-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.flatMap { mkdtemp($0) }
        }
        guard let created else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        path = String(cString: created)
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Everything about a file that a refused load must not change.
struct FileSnapshot: Equatable {
    var bytes: [UInt8]
    var mode: mode_t
    var inode: ino_t
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int

    /// Describes the entry itself (lstat), and reads through a link for the bytes.
    init(_ path: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        mode = status.st_mode
        inode = status.st_ino
        modifiedSeconds = status.st_mtim.tv_sec
        modifiedNanoseconds = status.st_mtim.tv_nsec
        let isRegularOrLink = (status.st_mode & S_IFMT) == S_IFREG || (status.st_mode & S_IFMT) == S_IFLNK
        bytes = isRegularOrLink ? try readBytes(path) : []
    }
}

func readBytes(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Writes a test fixture in place (truncating, not replacing it), bypassing the adapter,
/// with an explicit mode whatever the umask.
func writeRaw(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard descriptor >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    defer { close(descriptor) }
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress.map { $0 + offset }, bytes.count - offset) }
        guard written > 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        offset += written
    }
    guard fchmod(descriptor, mode) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
}

func permissions(of path: String) throws -> mode_t {
    var status = stat()
    guard lstat(path, &status) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    return status.st_mode & 0o7777
}

func temporaryFiles(in directory: String, of name: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory)
        .filter { $0.hasPrefix(name + ".tmp-") }
        .sorted()
}

final class Counter: Sendable {
    private let value = Mutex(0)

    func increment() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
}

/// The keyrotd-testhelper executable, built into the products directory by
/// `swift build --build-tests`; KEYROTD_TESTHELPER overrides the lookup. On Linux
/// `Bundle.main.bundleURL` is that directory itself; on macOS it is the .xctest bundle
/// inside it.
enum TestHelper {
    static let url: URL? = {
        if let override = ProcessInfo.processInfo.environment["KEYROTD_TESTHELPER"] {
            return URL(fileURLWithPath: override)
        }
        var directories = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        if let executable = Bundle.main.executableURL {
            directories.append(executable.deletingLastPathComponent())
        }
        return directories
            .map { $0.appendingPathComponent("keyrotd-testhelper") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()

    struct Outcome {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    static func run(_ arguments: String...) throws -> Outcome {
        try run(Running(arguments))
    }

    /// Runs the helper under `umask` set by a shell, so that this process's umask, shared
    /// with tests running in parallel, is never changed.
    static func run(umask: String, _ arguments: String...) throws -> Outcome {
        let url = try #require(TestHelper.url, "keyrotd-testhelper not found; build with swift build --build-tests")
        return try run(Running(
            ["-c", #"umask "$0" && exec "$@""#, umask, url.path] + arguments,
            executable: URL(fileURLWithPath: "/bin/sh")))
    }

    private static func run(_ running: Running) throws -> Outcome {
        let output = running.output.fileHandleForReading.readDataToEndOfFile()
        let error = running.error.fileHandleForReading.readDataToEndOfFile()
        running.process.waitUntilExit()
        return Outcome(
            status: running.process.terminationStatus,
            standardOutput: String(decoding: output, as: UTF8.self),
            standardError: String(decoding: error, as: UTF8.self))
    }

    /// A helper process that the test stops with SIGKILL.
    final class Running {
        let process = Process()
        let output = Pipe()
        let error = Pipe()

        init(_ arguments: [String], executable: URL? = nil) throws {
            let helper = try #require(
                TestHelper.url, "keyrotd-testhelper not found; build with swift build --build-tests")
            process.executableURL = executable ?? helper
            process.arguments = arguments
            process.standardOutput = output
            process.standardError = error
            try process.run()
        }

        /// Blocks until the helper prints `line`; false if it exited first.
        func waitFor(line: String) -> Bool {
            var seen = Data()
            while true {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { return false }
                seen.append(chunk)
                if String(decoding: seen, as: UTF8.self).split(separator: "\n").contains(Substring(line)) {
                    return true
                }
            }
        }

        var standardErrorSoFar: String {
            String(decoding: error.fileHandleForReading.availableData, as: UTF8.self)
        }

        func kill() {
            if process.isRunning {
                Glibc.kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
        }

        deinit {
            kill()
        }
    }
}

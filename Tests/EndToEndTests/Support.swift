import Foundation
import TestSupport
import Testing

/// The built `keyrotd`, next to the test bundle (or `$KEYROTD_BIN`).
let keyrotdBinary: String = {
    if let path = ProcessInfo.processInfo.environment["KEYROTD_BIN"] { return path }
    return Bundle.main.bundleURL.appendingPathComponent("keyrotd").path
}()

struct Outcome {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the real binary with a clean environment (plus `environment`), no stdin.
func keyrotd(_ arguments: [String], environment: [String: String] = [:]) throws -> Outcome {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: keyrotdBinary)
    process.arguments = arguments
    process.environment = ["PATH": "/usr/bin:/bin", "TZ": "UTC"].merging(environment) { $1 }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Outcome(
        status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: stderr, as: UTF8.self))
}


import Foundation

/// The built `keyrotd`, next to the test bundle (or `$KEYROTD_BIN`).
public let keyrotdBinary: String = {
    if let path = ProcessInfo.processInfo.environment["KEYROTD_BIN"] { return path }
    return Bundle.main.bundleURL.appendingPathComponent("keyrotd").path
}()

/// The built `keyrotd-gateway`, next to the test bundle (or `$KEYROTD_GATEWAY_BIN`).
public let gatewayBinary: String = {
    if let path = ProcessInfo.processInfo.environment["KEYROTD_GATEWAY_BIN"] { return path }
    return Bundle.main.bundleURL.appendingPathComponent("keyrotd-gateway").path
}()

/// `KEYROTD_LONG_TESTS=1` (`scripts/test --long`): the long versions of the crash,
/// kill, fuzz and load suites.
public let longTests = ProcessInfo.processInfo.environment["KEYROTD_LONG_TESTS"] == "1"

public struct ToolRun: CustomStringConvertible {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    /// Both streams, stdout first.
    public var output: String { stdout + stderr }

    public var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

/// Runs `executable` to completion with `stdin` (or /dev/null) as its input. Input and
/// output go through files (the input one 0600: it may hold a secret), so a chatty tool
/// cannot fill a pipe and stall.
public func runTool(
    _ executable: String, _ arguments: [String], stdin: String? = nil, environment: [String: String]? = nil
) throws -> ToolRun {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let outPath = try scratch.write("stdout", "")
    let errPath = try scratch.write("stderr", "")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    let input = try stdin.map { FileHandle(forReadingAtPath: try scratch.write("stdin", $0, mode: 0o600)) } ?? nil
    defer {
        try? out.close()
        try? err.close()
        try? input?.close()
    }
    process.standardInput = input ?? FileHandle.nullDevice
    process.standardOutput = out
    process.standardError = err
    try process.run()
    process.waitUntilExit()
    return ToolRun(
        status: process.terminationStatus,
        stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

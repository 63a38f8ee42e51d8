import Foundation
import TestSupport
import Testing

/// The built `keyrotd`, next to the test bundle (or `$KEYROTD_BIN`).
let keyrotdBinary: String = {
    if let path = ProcessInfo.processInfo.environment["KEYROTD_BIN"] { return path }
    return Bundle.main.bundleURL.appendingPathComponent("keyrotd").path
}()

typealias Outcome = ToolRun

/// Runs the real binary with a clean environment (plus `environment`), no stdin.
func keyrotd(_ arguments: [String], environment: [String: String] = [:]) throws -> Outcome {
    try runTool(keyrotdBinary, arguments, environment: ["PATH": "/usr/bin:/bin", "TZ": "UTC"].merging(environment) { $1 })
}



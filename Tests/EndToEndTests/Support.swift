import Foundation
import TestSupport
import Testing

/// The built `keyrotd`, next to the test bundle (or `$KEYROTD_BIN`).
let keyrotdBinary: String = {
    if let path = ProcessInfo.processInfo.environment["KEYROTD_BIN"] { return path }
    return Bundle.main.bundleURL.appendingPathComponent("keyrotd").path
}()

/// The built `keyrotd-gateway`, next to the test bundle (or `$KEYROTD_GATEWAY_BIN`).
let gatewayBinary: String = {
    if let path = ProcessInfo.processInfo.environment["KEYROTD_GATEWAY_BIN"] { return path }
    return Bundle.main.bundleURL.appendingPathComponent("keyrotd-gateway").path
}()

typealias Outcome = ToolRun

/// `KEYROTD_LONG_TESTS=1` (`scripts/test --long`): the long versions of the crash,
/// kill and fuzz suites.
let longTests = ProcessInfo.processInfo.environment["KEYROTD_LONG_TESTS"] == "1"

/// Runs the real binary with a clean environment (plus `environment`), no stdin.
func keyrotd(_ arguments: [String], environment: [String: String] = [:]) throws -> Outcome {
    try runTool(keyrotdBinary, arguments, environment: ["PATH": "/usr/bin:/bin", "TZ": "UTC"].merging(environment) { $1 })
}



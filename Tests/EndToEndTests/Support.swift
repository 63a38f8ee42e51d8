import Foundation
import TestSupport
import Testing

typealias Outcome = ToolRun

/// Runs the real binary with a clean environment (plus `environment`), no stdin.
func keyrotd(_ arguments: [String], environment: [String: String] = [:]) throws -> Outcome {
    try runTool(keyrotdBinary, arguments, environment: ["PATH": "/usr/bin:/bin", "TZ": "UTC"].merging(environment) { $1 })
}



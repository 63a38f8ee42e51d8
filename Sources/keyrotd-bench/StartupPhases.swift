import Foundation
import KeyRotation
import KeyRotationAdapters

/// The work `keyrotd run` does between exec and `READY=1`, phase by phase, in the
/// order `Daemon.start` and the top of `Daemon.run` do it (read from there; keep in
/// step): read and check the configuration, take the state lock, read and verify the
/// state file, decode it, build a machine per key, then the one persist before
/// READY (encode, and the atomic save: write, fsync, rename, fsync of the directory).
/// Process start (the loader, the Swift runtime) and the loop's set-up are not here:
/// scripts/bench measures exec to READY=1 as a whole beside this.
func benchStartup(configPath: String, runs: Int) throws {
    let environment = ProcessInfo.processInfo.environment
    let clock = ContinuousClock()
    let names = ["config", "lock", "load", "decode", "machines", "encode", "save"]
    var timings: [String: [Duration]] = [:]
    var keys = 0
    for _ in 0..<runs {
        var mark = clock.now
        func lap(_ name: String) {
            let now = clock.now
            timings[name, default: []].append(now - mark)
            mark = now
        }
        let loaded = ConfigLoader.load(path: configPath, environment: environment)
        guard let configuration = loaded.configuration else {
            throw BenchFailure(description: "\(configPath): configuration rejected, \(loaded.errors.count) problem(s)")
        }
        lap("config")
        let stateFile = StateFile(path: configuration.daemon.resolvedStateFile(environment: environment))
        try stateFile.prepareDirectory()
        let lock = try stateFile.lock()
        _ = try stateFile.removeLeftoverTemporaries(holding: lock)
        lap("lock")
        guard let (version, body) = try stateFile.load(maxSupportedVersion: StateDocument.schemaVersion, checkingJSON: false) else {
            throw BenchFailure(description: "\(stateFile.path): no state file")
        }
        lap("load")
        let document = try StateDocument.decode(body, version: version)
        lap("decode")
        var records: [String: KeyRecord] = [:]
        for key in configuration.keys {
            var machine = RotationMachine(
                record: document.keys[key.name] ?? KeyRecord(name: key.name, seed: 1), policy: key.policy,
                hooks: key.hooks, adopt: key.adopt, instance: "bench", workspace: key.workspace, timeZone: .current)
            machine.apply(policy: key.policy, hooks: key.hooks, adopt: key.adopt)
            records[key.name] = machine.record
        }
        keys = records.count
        lap("machines")
        let encoded = try StateDocument(keys: records, audit: document.audit, budget: document.budget).encoded()
        lap("encode")
        try stateFile.save(body: encoded, version: StateDocument.schemaVersion)
        lap("save")
    }
    let parts = names.map { name in
        let sorted = (timings[name] ?? []).sorted()
        return "\(name) \(percentile(sorted, 0.5))"
    }
    let totals = (0..<runs).map { run in names.reduce(Duration.zero) { $0 + (timings[$1]?[run] ?? .zero) } }.sorted()
    print("start-up phases in process, \(keys) keys, p50 of \(runs): \(parts.joined(separator: ", ")); sum p50 \(percentile(totals, 0.5))")
}

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
}

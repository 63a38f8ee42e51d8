import Foundation
import KeyRotation
import KeyRotationAdapters

// Measurements behind scripts/bench (never timed assertions in tests).
//
//     state DIR KEYS SAVES   encode + atomically save a KEYS-key state SAVES times
//                            (the durability cost of one persisted transition),
//                            then load + decode it; prints latency percentiles
//     engine ROTATIONS       drive one key through ROTATIONS full 90-day rotations
//                            against an in-memory provider; prints the rate
//     control SOCKET COUNT   COUNT status requests to a running daemon, one connection
//                            each; prints round-trip latency percentiles
//     populate DIR KEYS SEEDS  write a state of KEYS idle keys (first keys deployed a
//                            day ago) and their provider keys as JSON lines to SEEDS
//     startup CONFIG RUNS    the start path of `keyrotd run` phase by phase, in process

func percentile(_ sorted: [Duration], _ p: Double) -> String {
    let index = min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))
    let micros = Double(sorted[index].components.attoseconds) / 1e12 + Double(sorted[index].components.seconds) * 1e6
    return String(format: "%.0f µs", micros)
}

func document(keys: Int) -> StateDocument {
    let now = Date()
    var records: [String: KeyRecord] = [:]
    for index in 0..<keys {
        let name = "team-\(index)"
        var record = KeyRecord(name: name, seed: UInt64(index))
        record.current = ProviderKeyRef(
            id: UUID().uuidString.lowercased(), name: "keyrotd/\(name)/g7/3f2a9c", createdAt: now - .days(40), generation: 7)
        record.generation = 7
        record.nextDue = now + .days(50)
        record.jitterDraw = 0.37
        records[name] = record
    }
    return StateDocument(keys: records)
}

func benchState(directory: String, keys: Int, saves: Int) throws {
    let file = StateFile(path: directory + "/state.json")
    try file.prepareDirectory()
    let lock = try file.lock()
    _ = try file.removeLeftoverTemporaries(holding: lock)
    var doc = document(keys: keys)
    let clock = ContinuousClock()
    var timings: [Duration] = []
    var encodings: [Duration] = []
    var size = 0
    var writer = StateBodyWriter()
    _ = try writer.body(of: doc)  // as the daemon's first persist after start-up
    for round in 0..<saves {
        doc.keys["team-\(round % keys)"]?.attempts = round
        let start = clock.now
        let body = try writer.body(of: doc)
        let encoded = clock.now
        try file.save(body: body, version: StateDocument.schemaVersion)
        timings.append(clock.now - start)
        encodings.append(encoded - start)
        size = body.count
    }
    timings.sort()
    encodings.sort()
    var loads: [Duration] = []
    for _ in 0..<max(5, saves / 10) {
        let start = clock.now
        guard let (version, body) = try file.load(maxSupportedVersion: StateDocument.schemaVersion, checkingJSON: false) else { return }
        _ = try StateDocument.decode(body, version: version)
        loads.append(clock.now - start)
    }
    loads.sort()
    print("state file, \(keys) keys (\(size) bytes): one persisted transition (encode + write + fsync + rename + fsync dir) p50 \(percentile(timings, 0.5)), p99 \(percentile(timings, 0.99)), max \(percentile(timings, 1)) over \(saves), of which encode p50 \(percentile(encodings, 0.5)); load+decode p50 \(percentile(loads, 0.5))")
}

/// One key, an in-memory provider and consumer, a manual clock: the machine alone.
func benchEngine(rotations: Int) {
    var machine = RotationMachine(
        record: KeyRecord(name: "bench", seed: 1), policy: .standard, hooks: ["/h1", "/h2"], instance: "bench", workspace: "bench",
        timeZone: TimeZone(identifier: "UTC")!)
    var now = Date(timeIntervalSince1970: 1_790_000_000)
    var live: [String: Secret] = [:]
    var counter = 0
    var actionCount = 0
    let clock = ContinuousClock()
    let start = clock.now
    var queue = machine.handle(.tick, now: now)
    while machine.record.generation < rotations || machine.record.phase != .idle {
        guard !queue.isEmpty else {
            now = max(now, machine.nextDeadline ?? now)
            queue = machine.handle(.tick, now: now)
            continue
        }
        let action = queue.removeFirst()
        actionCount += 1
        var event: Event?
        switch action {
        case .createKey(let name, _):
            counter += 1
            let secret = Secret("sk-\(counter)")
            live["k\(counter)"] = secret
            event = .created(CreatedKey(id: "k\(counter)", name: name, secret: secret, createdAt: now))
        case .verifyKey(let id, _): event = live[id] == nil ? .failed(StepFailure(kind: .transient, code: "x", message: "x")) : .verified
        case .runHook(let hook): event = .hookSucceeded(path: hook.path)
        case .deleteKey(let id): live[id] = nil; event = .deleted(keyID: id)
        case .listKeys: event = .listed([])
        case .persist, .emit, .refuse: event = nil
        }
        if let event { queue += machine.handle(event, now: now) }
    }
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let simulatedDays = Int(now.timeIntervalSince1970 - 1_790_000_000) / 86400
    print(String(format: "engine: %d rotations (%d simulated days, %d actions) in %.1f ms: %.1f µs per rotation",
                 rotations, simulatedDays, actionCount, seconds * 1000, seconds * 1e6 / Double(rotations)))
}

func benchControl(socket: String, count: Int) throws {
    let clock = ContinuousClock()
    var latencies: [Duration] = []
    for _ in 0..<count {
        let start = clock.now
        let response = try ControlClient.send(ControlRequest(command: .status), to: socket, expecting: [KeyProgress].self, timeout: .seconds(10))
        guard response.ok else { throw ControlClientError(code: .badResponse, message: "\(response.error?.message ?? "no result")") }
        latencies.append(clock.now - start)
    }
    latencies.sort()
    print("control socket: \(count) status requests, round trip p50 \(percentile(latencies, 0.5)), p99 \(percentile(latencies, 0.99)), max \(percentile(latencies, 1))")
}

let arguments = CommandLine.arguments
do {
    switch arguments.dropFirst().first {
    case "state" where arguments.count == 5:
        try benchState(directory: arguments[2], keys: Int(arguments[3]) ?? 10, saves: Int(arguments[4]) ?? 100)
    case "engine" where arguments.count == 3:
        benchEngine(rotations: Int(arguments[2]) ?? 1000)
    case "control" where arguments.count == 4:
        try benchControl(socket: arguments[2], count: Int(arguments[3]) ?? 1000)
    case "populate" where arguments.count == 5:
        try populate(directory: arguments[2], keys: Int(arguments[3]) ?? 1000, seedFile: arguments[4])
    case "startup" where arguments.count == 4:
        try benchStartup(configPath: arguments[2], runs: Int(arguments[3]) ?? 10)
    default:
        FileHandle.standardError.write(Data(
            "usage: keyrotd-bench state DIR KEYS SAVES | engine ROTATIONS | control SOCKET COUNT | populate DIR KEYS SEEDS | startup CONFIG RUNS\n".utf8))
        exit(64)
    }
} catch {
    FileHandle.standardError.write(Data("\(error)\n".utf8))
    exit(1)
}

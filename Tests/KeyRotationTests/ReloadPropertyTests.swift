import Foundation
import Testing
@testable import KeyRotation

/// Randomized property test of the pure machine under reloads.
///
/// One key is driven through many simulated rotations against a fake provider
/// and per-hook fake consumers, with a simulated clock. Hooks and provider calls
/// fail at random (transient, 429, needs-operator, a create that reached the
/// provider but timed out), operators ask for rotations and revokes, the process
/// "crashes" (everything not persisted is lost; it restarts from the persisted
/// record the way the daemon does: `apply`, then the start-up catch-up), and at
/// random points, in every phase and also while an outcome is awaited (mid-deploy
/// with some hooks done, during a usage look, while a step backs off or is
/// blocked), a random new policy and hook list is applied as a SIGHUP would.
///
/// After every action and every event: only the current, previous and pending keys
/// (and keys an interrupted create left under the pending name, or strays being
/// swept) are live at the provider; the current key is live; every consumer still
/// configured holds a live key; a deploy hook is only given a live key whose secret
/// was persisted; a create or delete is only sent after its intent was persisted; a
/// key consumers held is deleted only after its successor's deploy plus the overlap
/// in force at that deploy (0 under a revoke). Right after a reload or restart, the
/// next due time is exactly creation + rotate_every + jitter draw × jitter of the
/// new policy, moved into its window (or to the catch-up) whenever no new key is
/// pending; at every quiet point it is never earlier than that, equal to it without
/// a window or catch-up, and inside the window with one. At every quiet point the
/// machine awaits an outcome exactly when one is coming, and otherwise a tick at its
/// deadline (now, if that is past) does something; ticks at one instant never loop.
/// After the run, with the faults off, it settles: exactly the current key is live
/// and every configured consumer holds it. A violation reports the seed and the
/// event history. The run is deterministic for
/// a seed: `KEYROTD_RELOAD_SEED=<n>` replays one (or starts a sweep there),
/// `KEYROTD_RELOAD_SEEDS=<count>` and `KEYROTD_RELOAD_STEPS=<n>` widen it,
/// `KEYROTD_RELOAD_SEED=random` starts from a fresh seed.
@Suite struct ReloadPropertyTests {
    static let environment = ProcessInfo.processInfo.environment

    static let baseSeed: UInt64 = {
        switch environment["KEYROTD_RELOAD_SEED"] {
        case "random"?: return UInt64.random(in: 0...UInt64.max)
        case let text?: return UInt64(text) ?? 0x5EED_0000
        case nil: return 0x5EED_0000
        }
    }()
    static let seedCount = environment["KEYROTD_RELOAD_SEEDS"].flatMap(Int.init) ?? 48
    static let steps = environment["KEYROTD_RELOAD_STEPS"].flatMap(Int.init) ?? 2_500

    @Test func reloadsAtRandomPointsKeepEveryPromise() {
        print("ReloadPropertyTests: base seed \(Self.baseSeed), \(Self.seedCount) seeds × \(Self.steps) steps"
              + " (replay one with KEYROTD_RELOAD_SEED=<seed> KEYROTD_RELOAD_SEEDS=1)")
        var totals = ReloadDriver.Totals()
        for index in 0..<Self.seedCount {
            let seed = Self.baseSeed &+ UInt64(index)
            var driver = ReloadDriver(seed: seed)
            do {
                try driver.run(steps: Self.steps)
                try driver.settle()
            } catch let violation as ReloadDriver.Violation {
                Issue.record(Comment(rawValue: driver.report(violation)))
                return
            } catch {
                Issue.record(error)
                return
            }
            totals.add(driver.totals)
        }
        print("ReloadPropertyTests: \(totals)")
        // The run must actually reach what it claims to test.
        #expect(totals.rotations > Self.seedCount * 3)
        #expect(totals.reloads > Self.seedCount * 10)
        #expect(totals.reloadsWhileAwaiting > 0)
        #expect(totals.reloadsInOverlap > 0)
        #expect(totals.reloadsMidDeploy > 0)
        #expect(totals.reloadsDuringUsageLook > 0 || Self.seedCount < 8)
        #expect(totals.reloadsWhileBlocked > 0 || Self.seedCount < 8)
        #expect(totals.crashes > 0)
        #expect(totals.startedBeforeExpiry > 0 || Self.seedCount < 8, "no reload ever needed the rotation moved before the key's expiry")
        #expect(totals.revokes > 0)
    }
}

/// The harness (its generator is the machine's `KeyRotation.SplitMix64`, not the
/// test-local one in TimeSpanTests). Not a `Simulation`: the hook list changes, outcomes can be held
/// back while other events arrive, and everything random comes from one seed.
struct ReloadDriver {
    struct Violation: Error, CustomStringConvertible {
        var description: String
    }

    struct Totals: CustomStringConvertible {
        var steps = 0
        var rotations = 0
        var reloads = 0
        var reloadsWhileAwaiting = 0
        var reloadsInOverlap = 0
        var reloadsMidDeploy = 0
        var reloadsDuringUsageLook = 0
        var reloadsWhileBlocked = 0
        var crashes = 0
        var revokes = 0
        var rotateRequests = 0
        var failures = 0
        var extensions = 0
        /// Not asserted (the design does not promise otherwise; see the note on `checkDeletion`),
        /// only counted: an old key deleted before deploy + the overlap in force at the deletion
        /// (a reload lengthened the overlap after the deploy).
        var deletedBeforeLongerOverlap = 0
        /// Asserted to stay 0 (`checkQuiet`): a current key whose provider expiry comes before
        /// its next rotation + overlap (a reload lengthened rotate_every after the key was
        /// created with the old lifetime).
        var expiresBeforeRotation = 0
        /// Quiet points whose due time was moved back before the key's expiry.
        var startedBeforeExpiry = 0

        mutating func add(_ other: Totals) {
            steps += other.steps
            rotations += other.rotations
            reloads += other.reloads
            reloadsWhileAwaiting += other.reloadsWhileAwaiting
            reloadsInOverlap += other.reloadsInOverlap
            reloadsMidDeploy += other.reloadsMidDeploy
            reloadsDuringUsageLook += other.reloadsDuringUsageLook
            reloadsWhileBlocked += other.reloadsWhileBlocked
            crashes += other.crashes
            revokes += other.revokes
            rotateRequests += other.rotateRequests
            failures += other.failures
            extensions += other.extensions
            deletedBeforeLongerOverlap += other.deletedBeforeLongerOverlap
            expiresBeforeRotation += other.expiresBeforeRotation
            startedBeforeExpiry += other.startedBeforeExpiry
        }

        var description: String {
            "\(steps) steps, \(rotations) rotations, \(reloads) reloads (\(reloadsWhileAwaiting) with an outcome awaited, "
                + "\(reloadsMidDeploy) mid-deploy, \(reloadsInOverlap) in overlap, \(reloadsDuringUsageLook) during a usage look, "
                + "\(reloadsWhileBlocked) while blocked), \(crashes) crashes, \(revokes) revokes, \(rotateRequests) rotate requests, "
                + "\(failures) injected failures, \(extensions) overlap extensions; noted: "
                + "\(deletedBeforeLongerOverlap) old key(s) deleted before deploy + an overlap lengthened later, "
                + "\(expiresBeforeRotation) quiet point(s) with the current key expiring before its next rotation + overlap, "
                + "\(startedBeforeExpiry) with the rotation moved before the key's expiry"
        }
    }

    static let allHooks = ["/h/a", "/h/b", "/h/c"]
    static let windows: [String?] = [nil, nil, "Mon..Fri 09:00..17:00", "Sat,Sun", "22:00..06:00", "Tue,Thu 10:00..12:00"]

    let seed: UInt64
    var rng: KeyRotation.SplitMix64
    var now = t0
    var provider = FakeProvider()
    var policy: KeyPolicy
    var hooks: [String]
    var adopt: String?
    var machine: RotationMachine
    var persisted: KeyRecord
    /// Actions returned by the machine and not yet performed, in order.
    var queue: [Action] = []
    /// The outcome of the awaited action, performed but not yet delivered.
    var outcome: Event?
    var history: [String] = []
    var totals = Totals()
    /// While settling: no failures, reloads, requests or crashes.
    var calm = false

    // What the consumers and the provider saw.
    /// Per hook: the key it was last given, only while the hook stayed configured since.
    var holds: [String: String] = [:]
    /// Keys that consumers were given (current at some point).
    var deployed: Set<String> = []
    /// Old key id -> when its successor's deploy finished, and the overlap then in force.
    var successorDeployed: [String: (at: Date, overlap: TimeSpan)] = [:]
    /// Keys an accepted revoke applies to (they may go with no overlap).
    var revoked: Set<String> = []
    /// Key id -> the lifetime its create asked for.
    var lifetimes: [String: TimeSpan] = [:]
    /// Consecutive ticks at one instant that awaited nothing (a tick loop would never end).
    var barrenTicks = 0
    var lastTickAt: Date?

    init(seed: UInt64) {
        self.seed = seed
        rng = KeyRotation.SplitMix64(seed: seed)
        policy = .test
        hooks = ["/h/a", "/h/b"]
        policy = Self.randomPolicy(&rng)
        hooks = Self.randomHooks(&rng)
        var record = KeyRecord(name: "prop", seed: seed ^ 0xA5A5)
        record.provider = "fake"
        if rng.nextUnit() < 0.3 {
            // Adopt a key that exists already and that every hook's consumer holds.
            let created = provider.create(name: "hand-made", now: t0 - .days(Int64(rng.next() % 40)))
            adopt = created.id
            for hook in hooks { holds[hook] = created.id }
            deployed.insert(created.id)
        }
        persisted = record
        machine = RotationMachine(record: record, policy: policy, hooks: hooks, adopt: adopt, instance: testInstance, workspace: testWorkspace, timeZone: utc)
        log("start: seed \(seed), policy \(Self.describe(policy)), hooks \(hooks), adopt \(adopt ?? "-")")
    }

    // MARK: - Randomness

    mutating func chance(_ p: Double) -> Bool { !calm && rng.nextUnit() < p }

    static func pick<T>(_ options: [T], _ rng: inout KeyRotation.SplitMix64) -> T {
        options[Int(rng.next() % UInt64(options.count))]
    }

    /// A policy check-config accepts: overlap < rotate_every, jitter <= rotate_every/4,
    /// max_overlap >= overlap, retry_max >= retry_initial.
    static func randomPolicy(_ rng: inout KeyRotation.SplitMix64) -> KeyPolicy {
        let every = pick([TimeSpan.days(2), .days(3), .days(5), .days(10), .days(30)], &rng)
        let overlap = pick([TimeSpan.hours(1), .hours(6), .hours(24), .days(2)].filter { $0 < every }, &rng)
        let jitter = pick([TimeSpan.zero, .hours(1), .hours(6), every / 4], &rng)
        let maxOverlap = pick([overlap, overlap, overlap + .days(1), max(overlap, .days(3)), max(overlap, .days(7))], &rng)
        let window = pick(windows, &rng).map { try! RotationWindow(parsing: $0) }
        return KeyPolicy(
            rotateEvery: every, overlap: overlap, jitter: jitter, hookTimeout: .minutes(2), window: window,
            maxOverlap: maxOverlap, retryInitial: pick([TimeSpan.seconds(30), .minutes(5)], &rng),
            retryMax: pick([TimeSpan.hours(1), .hours(2)], &rng), blockedRetry: pick([TimeSpan.hours(1), .hours(6)], &rng))
    }

    static func randomHooks(_ rng: inout KeyRotation.SplitMix64) -> [String] {
        var chosen = allHooks.filter { _ in rng.nextUnit() < 0.6 }
        if chosen.isEmpty { chosen = [pick(allHooks, &rng)] }
        if rng.nextUnit() < 0.5 { chosen.reverse() }
        return chosen
    }

    static func describe(_ p: KeyPolicy) -> String {
        "every \(p.rotateEvery) overlap \(p.overlap) max_overlap \(p.maxOverlap) jitter \(p.jitter) window \(p.window.map { "\($0)" } ?? "none") retry \(p.retryInitial)/\(p.retryMax) blocked \(p.blockedRetry)"
    }

    // MARK: - Running

    mutating func run(steps: Int) throws {
        for _ in 0..<steps { try step() }
    }

    /// Quiet down, and run until the rotation in flight (if any) is over.
    mutating func settle() throws {
        calm = true
        log("settling")
        var steps = 0
        while !(queue.isEmpty && outcome == nil && machine.record.phase == .idle && machine.record.pending == nil
            && machine.record.previous == nil && machine.record.current != nil && !machine.record.revokeQueued)
        {
            steps += 1
            guard steps < 20_000 else { throw violation("does not settle: \(summary())") }
            try step()
        }
        let current = machine.record.current!
        let live = provider.live.map(\.id)
        try require(live == [current.id], "after settling exactly the current key \(current.id) is live, not \(live)")
        for (hook, id) in holds where hooks.contains(hook) {
            try require(id == current.id, "after settling, consumer of \(hook) holds \(id), not the current key \(current.id)")
        }
        try checkQuiet()  // and its next rotation is scheduled
    }

    mutating func step() throws {
        totals.steps += 1
        if chance(0.01) { return try restart() }
        if !queue.isEmpty { return try performNext() }
        // Quiet point: every action of the last event is done.
        try checkQuiet()
        if chance(0.06) { return try reload() }
        if chance(0.004) { return try request(.revokeRequested) }
        if chance(0.006) { return try request(.rotateRequested) }
        if let event = outcome {
            outcome = nil
            log("<- \(Self.describe(event))")
            return try handle(event)
        }
        // Nothing awaited: time passes to the next deadline (sometimes a spurious early tick).
        guard let deadline = machine.nextDeadline else { throw violation("nothing queued, nothing awaited, and no deadline") }
        if deadline > now, chance(0.05) {
            now = now + TimeSpan(milliseconds: Int64(rng.nextUnit() * Double(deadline.timeIntervalSince(now) * 1000)))
        } else {
            now = max(now, deadline)
            if chance(0.2) { now = now + .minutes(Int64(rng.next() % 90)) }
        }
        try handle(.tick)
    }

    mutating func handle(_ event: Event) throws {
        let before = machine.record
        if case .tick = event { log("tick [\(before.phase.rawValue)]") }
        let actions = machine.handle(event, now: now)
        if case .tick = event {
            barrenTicks = lastTickAt == now && !actions.contains(where: \.awaitsOutcome) ? barrenTicks + 1 : 0
            lastTickAt = now
            try require(barrenTicks < 5, "ticks at one instant that never lead anywhere (a deadline that stays in the past)")
        }
        queue += actions
        try afterHandle(before: before)
    }

    /// Tracks deploys from the record itself (an emitted event may be lost to a crash
    /// after the record was persisted).
    mutating func afterHandle(before: KeyRecord) throws {
        let record = machine.record
        if let current = record.current, current.id != before.current?.id {
            deployed.insert(current.id)
            if let old = before.current?.id {
                totals.rotations += 1
                successorDeployed[old] = (now, record.revoking ? .zero : policy.overlap)
                log("   \(current.id) replaces \(old) (overlap \(record.revoking ? "0 (revoke)" : "\(policy.overlap)")), next due \(record.nextDue.map(Self.at) ?? "-")")
                // Some consumers keep using the old key for a while.
                if !calm, rng.nextUnit() < 0.4 { provider.usedUntil[old] = now + .hours(Int64(rng.next() % 96)) }
            } else {
                log("   \(current.id) is the first current key")
            }
        }
        try checkAlways()
    }

    // MARK: - Interjections

    mutating func reload() throws {
        let old = policy
        var next = policy
        // Change one or several settings; sometimes everything at once.
        let fresh = Self.randomPolicy(&rng)
        if rng.nextUnit() < 0.3 {
            next = fresh
        } else {
            repeat {
                switch rng.next() % 6 {
                case 0: next.rotateEvery = fresh.rotateEvery
                case 1: next.overlap = fresh.overlap
                case 2: next.maxOverlap = fresh.maxOverlap
                case 3: next.jitter = fresh.jitter
                case 4: next.window = fresh.window
                default: next.blockedRetry = fresh.blockedRetry
                }
            } while rng.nextUnit() < 0.4
            // Keep it valid, as check-config would.
            if !(next.overlap < next.rotateEvery) { next.overlap = min(.hours(1), next.rotateEvery / 2) }
            if next.jitter > next.rotateEvery / 4 { next.jitter = next.rotateEvery / 4 }
            if next.maxOverlap < next.overlap { next.maxOverlap = next.overlap }
        }
        var nextHooks = hooks
        if rng.nextUnit() < 0.4 { nextHooks = Self.randomHooks(&rng) }
        let record = machine.record
        totals.reloads += 1
        if machine.awaiting { totals.reloadsWhileAwaiting += 1 }
        if record.phase == .overlapping { totals.reloadsInOverlap += 1 }
        if record.phase == .deploying, !(record.pending?.hooksDone.isEmpty ?? true) { totals.reloadsMidDeploy += 1 }
        if record.phase == .overlapping, case .listKeys? = machine.inFlight { totals.reloadsDuringUsageLook += 1 }
        if record.phase == .blocked || record.retryAt != nil { totals.reloadsWhileBlocked += 1 }
        log("RELOAD in \(record.phase.rawValue)\(record.blockedStep.map { "(\($0.rawValue))" } ?? "")"
            + "\(machine.awaiting ? " awaiting \(Self.describe(machine.inFlight!))" : ""): \(Self.describe(next)), hooks \(nextHooks)"
            + (old == next ? " (policy unchanged)" : ""))
        for hook in hooks where !nextHooks.contains(hook) { holds[hook] = nil }  // that consumer is no longer ours
        policy = next
        hooks = nextHooks
        machine.apply(policy: next, hooks: nextHooks, adopt: adopt)
        try checkAlways()
        try checkDueFollowsPolicy(afterReload: true)
    }

    mutating func request(_ event: Event) throws {
        let before = machine.record
        let actions = machine.handle(event, now: now)
        let refused = actions.contains { if case .refuse = $0 { true } else { false } }
        log("REQUEST \(Self.describe(event)) in \(before.phase.rawValue)\(refused ? " (refused)" : "")")
        if case .revokeRequested = event, !refused {
            totals.revokes += 1
            // Every key consumers could hold at the request may go with no overlap.
            revoked.formUnion([before.current?.id, before.previous?.key.id].compactMap { $0 })
        }
        if case .rotateRequested = event, !refused { totals.rotateRequests += 1 }
        queue += actions
        try afterHandle(before: before)
    }

    /// Everything not persisted is lost; the daemon starts again from the state file:
    /// a fresh machine, `apply` of the configuration, the start-up catch-up.
    mutating func restart() throws {
        totals.crashes += 1
        log("CRASH in \(machine.record.phase.rawValue) (dropping \(queue.count) queued action(s)\(outcome.map { ", outcome \(Self.describe($0))" } ?? ""))")
        queue = []
        outcome = nil
        now = now + .seconds(1 + Int64(rng.next() % 600))
        let document = StateDocument(keys: [persisted.name: persisted])
        let decoded = try! StateDocument.decode(try! document.encoded(), version: StateDocument.schemaVersion)
        persisted = decoded.keys[persisted.name]!
        machine = RotationMachine(record: persisted, policy: policy, hooks: hooks, adopt: adopt, instance: testInstance, workspace: testWorkspace, timeZone: utc)
        machine.apply(policy: policy, hooks: hooks, adopt: adopt)
        var machines = [machine]
        _ = Schedule.staggerOverdue(&machines, now: now, spacing: .minutes(1))
        machine = machines[0]
        try checkAlways()
        try checkDueFollowsPolicy(afterReload: true)
    }

    // MARK: - Performing actions

    mutating func performNext() throws {
        let action = queue.removeFirst()
        switch action {
        case .persist:
            persisted = machine.record
            return
        case .emit(let event):
            try observe(event)
            return
        case .refuse(let why):
            log("   refused: \(why)")
            return
        default:
            break
        }
        guard outcome == nil else { throw violation("a second awaited action \(Self.describe(action)) while one is in flight") }
        log("-> \(Self.describe(action))")
        outcome = try perform(action)
        try checkAlways()
    }

    static func failure(_ rng: inout KeyRotation.SplitMix64, code: String) -> StepFailure {
        let roll = rng.nextUnit()
        if roll < 0.12 { return StepFailure(kind: .needsOperator, code: "http_403", message: "forbidden") }
        if roll < 0.3 {
            return StepFailure(kind: .rateLimited, code: "http_429", message: "slow down",
                               retryAfter: rng.nextUnit() < 0.5 ? .seconds(Int64(rng.next() % 120)) : nil)
        }
        if roll < 0.35 { return StepFailure(kind: .deferred, code: "state_write", message: "disk full") }
        return StepFailure(kind: .transient, code: code, message: "unavailable")
    }

    mutating func perform(_ action: Action) throws -> Event {
        func fail(_ code: String) -> Event {
            totals.failures += 1
            return .failed(Self.failure(&rng, code: code))
        }
        switch action {
        case .createKey(let name, let lifetime):
            try require(persisted.pending?.name == name && persisted.pending?.createAttempted == true,
                        "create \(name) sent before its intent was persisted")
            if chance(0.06) { return fail("http_503") }
            let created = provider.create(name: name, now: now)
            lifetimes[created.id] = lifetime
            if chance(0.05) {
                totals.failures += 1
                log("   (the create of \(created.id) reached the provider, the answer timed out)")
                return .failed(StepFailure(kind: .transient, code: "timeout", message: "timed out"))
            }
            return .created(created)
        case .listKeys(let filter):
            if chance(0.06) { return fail("http_502") }
            return .listed(provider.list(nameContains: filter, now: now))
        case .verifyKey(_, let secret):
            if chance(0.05) { return fail("http_503") }
            return provider.accepts(secret) ? .verified : .failed(StepFailure(kind: .transient, code: "http_401", message: "rejected"))
        case .runHook(let hook):
            if chance(0.1) {
                totals.failures += 1
                return .failed(StepFailure(kind: .transient, code: "hook_exit_1", message: "hook failed"))
            }
            if hook.event == .deploy {
                try require(hook.secret != nil && persisted.pending?.secret == hook.secret, "deploy before the secret was persisted")
                try require(provider.live.contains { $0.id == hook.keyID }, "deploy hook \(hook.path) is given key \(hook.keyID), which is not live")
                if hooks.contains(hook.path) { holds[hook.path] = hook.keyID }
            }
            return .hookSucceeded(path: hook.path)
        case .deleteKey(let id):
            let retiring = persisted.phase == .retiring && persisted.previous?.key.id == id
            let orphan = persisted.pending?.orphans.contains(id) == true || persisted.strays?.contains(id) == true
            try require(retiring || orphan, "delete of \(id) sent before its intent was persisted")
            if chance(0.06) { return fail("http_503") }
            try checkDeletion(id)
            provider.delete(id, now: now)
            return .deleted(keyID: id)
        case .persist, .emit, .refuse:
            throw violation("not an awaited action: \(action)")
        }
    }

    mutating func observe(_ event: AuditEvent) throws {
        switch event.kind {
        case .adopted:
            log("   adopted \(event.keyID ?? "-")")
        case .retirementExtended:
            totals.extensions += 1
            log("   \(event.kind.rawValue): \(event.message)")
        case .retirementForced, .keyRetired, .orphanDeleted, .orphanFound, .blocked, .rotationCompleted:
            log("   \(event.kind.rawValue): \(event.message)")
        default:
            break
        }
    }

    // MARK: - Invariants

    func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw violation(message()) }
    }

    func violation(_ message: String) -> Violation {
        Violation(description: "\(message)\n  at \(Self.at(now)), machine: \(summary())")
    }

    /// A deployed key goes only after its successor was deployed by every hook and the
    /// overlap in force at that deploy has passed, unless a revoke took it.
    /// A reload that lengthens the overlap after the deploy does not move the end of
    /// that overlap (README: a reload moves the next rotation; a rotation not yet
    /// deployed takes the new overlap): counted, not asserted.
    mutating func checkDeletion(_ id: String) throws {
        try require(machine.record.current?.id != id, "deleting \(id), the current key")
        guard deployed.contains(id) else { return }  // never reached a consumer: an orphan or stray
        guard let successor = successorDeployed[id] else {
            throw violation("deleting \(id), which consumers hold, before any successor was deployed")
        }
        if revoked.contains(id) { return }
        if now < successor.at + policy.overlap { totals.deletedBeforeLongerOverlap += 1 }
        try require(now >= successor.at + successor.overlap,
                    "deleting \(id) at \(Self.at(now)), before its successor's deploy (\(Self.at(successor.at))) + overlap \(successor.overlap)")
    }

    /// After every event, action and reload.
    func checkAlways() throws {
        let record = machine.record
        // Only the keys the record tracks are live at the provider, plus keys an
        // interrupted create left under the pending key's name.
        let tracked = Set([record.current?.id, record.previous.flatMap { $0.deleted ? nil : $0.key.id }, record.pending?.id].compactMap { $0 })
        let lost = Set((record.pending?.orphans ?? []) + (record.strays ?? []))
        for key in provider.live where !tracked.contains(key.id) && !lost.contains(key.id) {
            if record.current == nil, key.id == adopt { continue }  // the key to adopt
            try require(key.name == record.pending?.name || key.name == persisted.pending?.name,
                        "live key \(key.id) (\(key.name)) is neither current, previous nor pending")
        }
        try require(tracked.count <= 3, "more than three tracked live keys")
        // Every consumer we still feed holds a live key.
        for (hook, id) in holds {
            try require(provider.live.contains { $0.id == id }, "consumer of \(hook) holds \(id), which is deleted")
        }
        // The current key is live, and once deployed it is what the record calls current.
        if let current = record.current {
            try require(provider.live.contains { $0.id == current.id }, "the current key \(current.id) is not live")
        }
    }

    /// When every action of the last event has been performed.
    mutating func checkQuiet() throws {
        try checkAlways()
        try checkDueFollowsPolicy(afterReload: false)
        guard outcome == nil else {
            try require(machine.awaiting, "an outcome is pending but the machine awaits none")
            return
        }
        try require(!machine.awaiting, "the machine awaits an outcome no action will bring")
        // The provider expires a key after the lifetime asked at its create; a reload that
        // lengthens rotate_every cannot extend it, so the machine must start the next
        // rotation early enough that the key outlives its successor's deploy + overlap.
        if let current = machine.record.current, let lifetime = lifetimes[current.id] {
            try require(current.expiresAt == current.createdAt + lifetime,
                        "the current key's expiry \(current.expiresAt.map(Self.at) ?? "-") is not its creation + the lifetime its create asked for")
            if let due = machine.record.nextDue, machine.record.pending == nil, due + policy.overlap > current.createdAt + lifetime {
                totals.expiresBeforeRotation += 1
                throw violation("the current key expires at \(Self.at(current.createdAt + lifetime)), before its next rotation \(Self.at(due)) + the overlap")
            }
        }
        // Never stuck: at its deadline (or now, if that is past) a tick does something.
        guard let deadline = machine.nextDeadline else { throw violation("not awaiting, but no deadline") }
        try require(deadline < Date.distantFuture, "a deadline of never")
        var probe = machine
        let at = max(now, deadline)
        let actions = probe.handle(.tick, now: at)
        try require(!actions.isEmpty || probe.record != machine.record,
                    "stuck: a tick at the deadline \(Self.at(deadline)) (now \(Self.at(now))) does nothing")
    }

    /// Once no new key is pending, the next due time is the current key's creation
    /// + rotate_every + this cycle's jitter under the policy in force, moved into its
    /// window (or to the start-up catch-up), never the one computed under an older policy.
    mutating func checkDueFollowsPolicy(afterReload: Bool) throws {
        let record = machine.record
        guard record.pending == nil, let current = record.current else { return }
        guard let due = record.nextDue else {
            try require(record.phase == .idle, "no next due time in \(record.phase.rawValue)")
            return
        }
        // A key whose expiry comes too soon for the policy (a reload lengthened it) starts
        // its next rotation at the latest instant that leaves it the overlap and a day.
        if let latest = Schedule.latestStart(expiresAt: current.expiresAt, policy: policy), due == latest {
            totals.startedBeforeExpiry += 1
            return
        }
        let plain = current.createdAt + policy.rotateEvery + policy.jitter.multiplied(by: record.jitterDraw)
        let formula = Schedule.dueTime(created: current.createdAt, jitterDraw: record.jitterDraw, policy: policy, timeZone: utc)
        let context = "next due \(Self.at(due)) for key \(current.id) created \(Self.at(current.createdAt)) (draw \(record.jitterDraw)) in \(record.phase.rawValue); \(Self.describe(policy))"
        if let notBefore = record.notBefore, notBefore > formula {
            let expected = policy.window?.nextOpening(atOrAfter: notBefore, in: utc) ?? notBefore
            if afterReload { try require(due == expected, "after a reload: expected \(Self.at(expected)) (catch-up); \(context)") }
            try require(due >= plain, "due before creation + rotate_every + jitter; \(context)")
            return
        }
        if afterReload {
            try require(due == formula, "after a reload: expected \(Self.at(formula)); \(context)")
        }
        guard let window = policy.window else {
            try require(due == plain, "expected \(Self.at(plain)) = creation + rotate_every + jitter; \(context)")
            return
        }
        // A due time that passed outside the window moves to the next opening.
        try require(due >= plain, "due before creation + rotate_every + jitter; \(context)")
        try require(window.contains(due, in: utc) || due == formula, "due outside the window; \(context)")
    }

    // MARK: - Reporting

    mutating func log(_ line: String) {
        history.append("[\(Self.at(now))] \(line)")
    }

    static func at(_ date: Date) -> String {
        let hours = date.timeIntervalSince(t0) / 3600
        return String(format: "t0%+.3fh", hours)
    }

    func summary() -> String {
        let r = machine.record
        return "phase \(r.phase.rawValue)\(r.blockedStep.map { "(\($0.rawValue))" } ?? ""), gen \(r.generation), current \(r.current?.id ?? "-")"
            + " created \(r.current.map { Self.at($0.createdAt) } ?? "-"), previous \(r.previous.map { "\($0.key.id) retireAt \(Self.at($0.retireAt)) deleted \($0.deleted)" } ?? "-")"
            + ", pending \(r.pending.map { "\($0.name) id \($0.id ?? "-") hooksDone \($0.hooksDone)" } ?? "-")"
            + ", nextDue \(r.nextDue.map(Self.at) ?? "-"), retryAt \(r.retryAt.map(Self.at) ?? "-"), notBefore \(r.notBefore.map(Self.at) ?? "-")"
            + ", revoking \(r.revoking) queued \(r.revokeQueued), inFlight \(machine.inFlight.map(Self.describe) ?? "-")"
            + ", live \(provider.live.map(\.id)), holds \(holds.sorted { $0.key < $1.key })"
    }

    func report(_ violation: Violation) -> String {
        let tail = history.suffix(120)
        return "ReloadPropertyTests: seed \(seed) (replay: KEYROTD_RELOAD_SEED=\(seed) KEYROTD_RELOAD_SEEDS=1): \(violation)\n"
            + "history (\(history.count) entries, last \(tail.count)):\n" + tail.joined(separator: "\n")
    }

    static func describe(_ action: Action) -> String {
        switch action {
        case .createKey(let name, _): "create \(name)"
        case .listKeys(let filter): "list \(filter ?? "*")"
        case .verifyKey(let id, _): "verify \(id)"
        case .runHook(let hook): "\(hook.event.rawValue) hook \(hook.path) key \(hook.keyID)"
        case .deleteKey(let id): "delete \(id)"
        case .persist: "persist"
        case .emit(let event): "emit \(event.kind.rawValue)"
        case .refuse(let why): "refuse \(why)"
        }
    }

    static func describe(_ event: Event) -> String {
        switch event {
        case .tick: "tick"
        case .created(let key): "created \(key.id)"
        case .listed(let keys): "listed \(keys.map(\.id))"
        case .verified: "verified"
        case .hookSucceeded(let path): "hook \(path) ok"
        case .deleted(let id): "deleted \(id)"
        case .failed(let failure): "failed \(failure.code)"
        case .rotateRequested: "rotate"
        case .revokeRequested: "revoke"
        }
    }
}

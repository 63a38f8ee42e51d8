import Foundation
import Testing
@testable import KeyRotation

@Suite struct FullRotationTests {
    @Test func aNinetyDayRotationWithADayOfOverlap() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        let first = try #require(sim.record.current)
        #expect(first.createdAt == t0)
        #expect(sim.consumer.secret == sim.provider.keys[first.id]?.secret)
        let due = try #require(sim.record.nextDue)
        #expect(due >= t0 + .days(90) && due <= t0 + .days(90) + .hours(6))

        try sim.run { $0.record.generation == 2 && $0.record.phase == .idle }
        let second = try #require(sim.record.current)
        #expect(second.createdAt == due, "rotation starts exactly at the due time")
        #expect(sim.provider.live.map(\.id) == [second.id])
        let deleted = try #require(sim.provider.keys[first.id]?.deletedAt)
        #expect(deleted == due + .hours(24))
        #expect(sim.consumer.secret == sim.provider.keys[second.id]?.secret)
        #expect(sim.record.pending == nil, "no secret stays in the state")
        let kinds = sim.events.map(\.kind)
        let start = try #require(kinds.lastIndex(of: .rotationStarted))
        #expect(Array(kinds[start...]) == [
            .rotationStarted, .keyCreated, .keyVerified, .hookSucceeded, .hookSucceeded, .deployed,
            .overlapStarted, .keyRetired, .hookSucceeded, .hookSucceeded, .rotationCompleted,
        ])
    }

    @Test func tenRotationsRunInMilliseconds() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 10 && $0.record.phase == .idle }
        #expect(sim.provider.keys.count == 10)
        #expect(sim.provider.live.count == 1)
        #expect(sim.now > t0 + .days(810))
    }

    @Test func theDueTimeUsesAJitterDrawnOncePerCycle() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 1 }
        let due = try #require(sim.record.nextDue)
        let draw = sim.record.jitterDraw
        // A restart re-applies the policy, as the daemon does at start: same due time.
        sim.restart()
        sim.machine.apply(policy: .test, hooks: hooks, adopt: nil)
        #expect(sim.record.nextDue == due)
        // The next cycle draws anew.
        try sim.run { $0.record.generation == 2 && $0.record.phase == .idle }
        #expect(sim.record.jitterDraw != draw)
        // Different keys (seeds) get different due times from the same creation time.
        var dues: Set<Date> = []
        for seed in UInt64(1)...20 {
            var other = Simulation(record: KeyRecord(name: "k\(seed)", seed: seed))
            try other.run { $0.record.generation == 1 }
            dues.insert(try #require(other.record.nextDue))
        }
        #expect(dues.count == 20)
        #expect(dues.allSatisfy { $0 >= t0 + .days(90) && $0 < t0 + .days(90) + .hours(6) })
    }

    @Test func aReloadKeepsTheDrawButUsesTheNewInterval() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 1 }
        let created = try #require(sim.record.current?.createdAt)
        var policy = KeyPolicy.test
        policy.rotateEvery = .days(30)
        sim.machine.apply(policy: policy, hooks: hooks, adopt: nil)
        #expect(sim.record.nextDue == created + .days(30) + policy.jitter.multiplied(by: sim.record.jitterDraw))
    }

    /// A reload that lands while the new key is already deployed (overlapping or
    /// retiring) must reschedule it too: its due time was computed at deploy with
    /// the old interval, and keeping it starts one more rotation on the old
    /// schedule after the reload (the "stray" of the end-to-end fault suites: the
    /// settled daemon began a rotation just as the test stopped it).
    @Test(arguments: [Phase.overlapping, Phase.retiring])
    func aReloadDuringOverlapOrRetireUsesTheNewIntervalForTheNextRotation(phase: Phase) throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        if phase == .retiring {
            // The old key's delete fails once, so the machine waits in retiring.
            sim.inject.append((match: .delete, failure: FailureTests.transient))
        }
        try sim.run { $0.record.generation == 2 && $0.record.phase == phase }
        let created = try #require(sim.record.current?.createdAt)
        var policy = KeyPolicy.test
        policy.rotateEvery = .days(30)
        sim.policy = policy
        sim.machine.apply(policy: policy, hooks: hooks, adopt: nil)
        try sim.run { $0.record.generation == 2 && $0.record.phase == .idle }
        let expected = created + .days(30) + policy.jitter.multiplied(by: sim.record.jitterDraw)
        #expect(sim.record.nextDue == expected, "the rotation after the reload keeps the old interval")
        try sim.run { $0.record.generation == 3 && $0.record.phase == .idle }
        #expect(sim.record.current?.createdAt == expected)
    }

    /// The provider expires a key after the lifetime its create asked for. A reload to a
    /// longer `rotate_every` must not schedule the next rotation after that: it starts
    /// early enough that the key outlives its successor's deploy and the overlap, with a day
    /// to spare — outside the window if the window opens too late.
    @Test(arguments: [false, true])
    func aLongerIntervalAfterAReloadNeverOutlivesTheCurrentKey(window: Bool) throws {
        var short = KeyPolicy.test
        short.rotateEvery = .days(2)
        short.jitter = .zero
        short.maxOverlap = short.overlap
        var sim = Simulation(policy: short)
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        let current = try #require(sim.record.current)
        // 2d + 24h overlap + 7d margin, from the create.
        #expect(current.expiresAt == current.createdAt + short.keyLifetime)
        #expect(sim.record.nextDue == current.createdAt + .days(2), "not binding under the policy the key was created with")
        var long = short
        long.rotateEvery = .days(30)
        if window { long.window = try RotationWindow(parsing: "Sat") }
        sim.policy = long
        sim.machine.apply(policy: long, hooks: hooks, adopt: nil)
        let latest = try #require(current.expiresAt) - long.overlap - .days(1)
        #expect(sim.record.nextDue == latest)
        try sim.run { $0.record.generation == 2 && $0.record.phase == .idle }
        let next = try #require(sim.record.current)
        #expect(next.createdAt <= latest)
        #expect(next.expiresAt == next.createdAt + long.keyLifetime, "the new key has the new lifetime")
    }

    @Test func theWindowMovesTheStartToTheNextOpening() throws {
        var policy = KeyPolicy.test
        policy.window = try RotationWindow(parsing: "Mon..Fri 09:00..17:00")
        policy.jitter = .zero
        var sim = Simulation(policy: policy)
        sim.now = Date(timeIntervalSince1970: 1_790_000_000)  // Mon 2026-09-21 14:13 UTC
        try sim.run { $0.record.generation == 1 }
        // +90d = Sun 2026-12-20: the next opening is Mon 2026-12-21 09:00 UTC.
        #expect(sim.record.nextDue == Timestamp.parse("2026-12-21T09:00:00Z"))
        try sim.run { $0.record.generation == 2 }
        #expect(sim.record.current?.createdAt == Timestamp.parse("2026-12-21T09:00:00Z"))
    }
}

@Suite struct FailureTests {
    static let transient = StepFailure(kind: .transient, code: "http_503", message: "unavailable")

    @Test func backoffGrowsExponentiallyWithFullJitterAndACap() throws {
        var sim = Simulation()
        var delays: [TimeInterval] = []
        for _ in 0..<12 {
            sim.inject.append((match: .create, failure: Self.transient))
        }
        try sim.send(.tick)
        for attempt in 1...12 {
            let retryAt = try #require(sim.record.retryAt)
            delays.append(retryAt.timeIntervalSince(sim.now))
            #expect(sim.record.attempts == attempt)
            let ceiling = min(3600, 30 * pow(2, Double(attempt - 1)))
            #expect(delays.last! >= 15 && delays.last! <= ceiling, "attempt \(attempt): \(delays.last!)")
            sim.now = retryAt
            try sim.send(.tick)
        }
        #expect(sim.record.generation == 1)
        #expect(sim.provider.keys.count == 1)
        #expect(Set(delays).count > 8, "delays are jittered")
    }

    @Test func aRetryAfterIsHonoured() throws {
        var sim = Simulation()
        sim.inject.append((match: .create, failure: StepFailure(kind: .rateLimited, code: "http_429", message: "slow down", retryAfter: .seconds(120))))
        try sim.send(.tick)
        #expect(sim.record.retryAt == sim.now + .seconds(120))
        let before = sim.actions
        sim.now = sim.now + .seconds(119)
        try sim.send(.tick)
        #expect(sim.actions == before, "nothing before Retry-After")
    }

    @Test func aRetryAfterACreateFailureReconcilesFirst() throws {
        var sim = Simulation()
        sim.inject.append((match: .create, failure: Self.transient))
        try sim.send(.tick)
        sim.now = try #require(sim.record.retryAt)
        var machine = RotationMachine(record: sim.record, policy: .test, hooks: hooks, instance: testInstance, workspace: testWorkspace, timeZone: utc)
        let actions = machine.handle(.tick, now: sim.now)
        guard case .listKeys(let filter?) = actions.first else {
            Issue.record("expected a list by name first, got \(actions)")
            return
        }
        #expect(filter.hasPrefix("keyrotd/\(testInstance)/dev-team/g1/"))
        #expect(filter == sim.record.pending?.name)
    }

    @Test(arguments: ["http_401", "http_403", "http_422"])
    func anOperatorErrorBlocksAndRetriesSlowly(code: String) throws {
        var sim = Simulation()
        sim.inject.append((match: .create, failure: StepFailure(kind: .needsOperator, code: code, message: "no")))
        try sim.send(.tick)
        #expect(sim.record.phase == .blocked)
        #expect(sim.record.blockedStep == .creating)
        #expect(sim.record.retryAt == sim.now + .hours(6))
        #expect(sim.events.last?.kind == .blocked)
        #expect(sim.events.last?.failure?.code == code)
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        #expect(sim.record.current?.createdAt == t0 + .hours(6))
        #expect(sim.provider.live.count == 1, "the blocked create was reconciled, not duplicated")
    }

    @Test func aFailingHookIsRetriedAndOnlyItReruns() throws {
        var sim = Simulation()
        sim.inject.append((match: .hook("/hooks/b"), failure: StepFailure(kind: .transient, code: "hook_exit_2", message: "exit 2")))
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        #expect(sim.consumer.hookRuns.map(\.path) == ["/hooks/a", "/hooks/b", "/hooks/b"])
    }

    @Test func aKeyThatNeverVerifiesBlocksAfterTheLimit() throws {
        var sim = Simulation()
        for _ in 0..<RotationMachine.maxVerifyAttempts {
            sim.inject.append((match: .verify, failure: Self.transient))
        }
        try sim.run(maxSteps: 100) { $0.record.phase == .blocked }
        #expect(sim.record.blockedStep == .verifying)
        #expect(sim.record.attempts == RotationMachine.maxVerifyAttempts)
        #expect(sim.consumer.hookRuns.isEmpty, "an unverified key is never deployed")
    }
}

@Suite struct ReconcileAndAdoptTests {
    @Test func aCreateLostInACrashIsFoundDeletedAndCreatedAnew() throws {
        var sim = Simulation()
        sim.crashAfter = [3]  // rotation-started, persist (intent), create
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        #expect(sim.provider.keys.count == 2)
        #expect(sim.provider.live.count == 1)
        #expect(sim.events.contains { $0.kind == .orphanFound })
        #expect(sim.events.contains { $0.kind == .orphanDeleted })
    }

    @Test func aCreateThatNeverReachedTheProviderIsCreatedOnce() throws {
        var sim = Simulation()
        sim.crashAfter = [2]  // rotation-started, persist (intent): the create was never sent
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        #expect(sim.provider.keys.count == 1)
        #expect(!sim.events.contains { $0.kind == .orphanFound })
    }

    @Test func adoptTakesOverAnExistingKey() throws {
        var sim = Simulation(adopt: "k1")
        _ = sim.provider.create(name: "hand-made", now: t0 - .days(80))
        try sim.run { $0.record.current != nil && $0.record.phase == .idle }
        #expect(sim.record.current?.id == "k1")
        #expect(sim.record.generation == 0)
        let due = try #require(sim.record.nextDue)
        #expect(due >= t0 + .days(10) && due <= t0 + .days(10) + .hours(6))
        #expect(sim.consumer.hookRuns.isEmpty)
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        #expect(sim.provider.keys["k1"]?.deletedAt != nil)
    }

    @Test func adoptingAMissingKeyBlocks() throws {
        var sim = Simulation(adopt: "nope")
        try sim.send(.tick)
        #expect(sim.record.phase == .blocked)
        #expect(sim.record.lastError?.code == "adopt_not_found")
    }
}

@Suite struct OperatorTests {
    @Test func revokeRotatesNowWithNoOverlap() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        let old = try #require(sim.record.current?.id)
        sim.now = sim.now + .days(3)
        try sim.send(.revokeRequested)
        try sim.run { $0.record.generation == 2 && $0.record.phase == .idle }
        let new = try #require(sim.record.current?.id)
        let deployed = try #require(sim.consumer.deployedAt[new])
        #expect(sim.provider.keys[old]?.deletedAt == deployed, "deleted at once after deploy")
        #expect(sim.record.revoking == false)
    }

    @Test func revokeJoinsARotationInOverlap() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 2 && $0.record.phase == .overlapping }
        let old = try #require(sim.record.previous?.key.id)
        try sim.send(.revokeRequested)
        #expect(sim.provider.keys[old]?.deletedAt == sim.now)
    }

    @Test func rotateIsRefusedWhileInFlight() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 2 && $0.record.phase == .overlapping }
        try sim.send(.rotateRequested)
        #expect(sim.refusals.count == 1)
        #expect(sim.refusals[0].contains("already in flight (overlapping)"))
    }

    @Test func catchUpStaggersOverdueKeysOldestFirst() throws {
        func machine(_ name: String, due: Date) -> RotationMachine {
            var record = KeyRecord(name: name, seed: 1)
            record.current = ProviderKeyRef(id: name, name: name, createdAt: due - .days(90), generation: 1)
            record.generation = 1
            record.nextDue = due
            return RotationMachine(record: record, policy: .test, hooks: hooks, instance: testInstance, workspace: testWorkspace, timeZone: utc)
        }
        let now = t0 + .days(200)
        var machines = [machine("a", due: t0 + .days(100)), machine("b", due: t0 + .days(50)),
                        machine("c", due: now + .days(1)), machine("d", due: t0 + .days(150))]
        let events = Schedule.staggerOverdue(&machines, now: now, spacing: .minutes(1))
        #expect(events.map(\.key) == ["b", "a", "d"])
        #expect(machines.map(\.record.nextDue) == [now + .minutes(1), now, now + .days(1), now + .minutes(2)])
    }
}

/// Regressions found in review: each of these broke a promise before it was fixed.
@Suite struct ReviewRegressionTests {
    static func adoptable() -> Simulation {
        var sim = Simulation(adopt: "k2")
        _ = sim.provider.create(name: "hand-made", now: t0 - .days(80))
        return sim
    }

    @Test func revokeBeforeAnyKeyIsRefusedAndLeavesNoEmergencyFlagBehind() throws {
        var sim = Self.adoptable()
        try sim.send(.tick)  // k2 does not exist yet: blocked in adopting
        #expect(sim.record.phase == .blocked)
        _ = sim.provider.create(name: "hand-made-2", now: t0 - .days(80))
        try sim.send(.revokeRequested)
        #expect(sim.refusals.last?.contains("no key to revoke") == true)
        #expect(!sim.record.revoking)
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        let deployed = try #require(sim.consumer.deployedAt[sim.record.current!.id])
        #expect(try #require(sim.provider.keys["k2"]?.deletedAt) >= deployed + KeyPolicy.test.overlap)
    }

    @Test func revokeDuringOverlapReplacesTheNewKeyToo() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 2 && $0.record.phase == .overlapping }
        let old = try #require(sim.record.previous?.key.id)
        let new = try #require(sim.record.current?.id)
        try sim.send(.revokeRequested)
        try sim.run { $0.record.generation == 3 && $0.record.phase == .idle }
        #expect(sim.provider.keys[old]?.deletedAt != nil)
        #expect(sim.provider.keys[new]?.deletedAt != nil, "the key consumers held at the request is gone too")
        #expect(sim.provider.live.map(\.id) == [sim.record.current!.id])
        #expect(!sim.record.revoking && !sim.record.revokeQueued)
    }

    @Test func removingAdoptUnblocksAKeyStuckAdopting() throws {
        var sim = Simulation(adopt: "typo")
        try sim.send(.tick)
        #expect(sim.record.blockedStep == .adopting)
        sim.adopt = nil
        sim.machine.apply(policy: .test, hooks: hooks, adopt: nil)
        try sim.send(.rotateRequested)
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        #expect(sim.provider.live.count == 1)
    }

    @Test func rotateBeforeAdoptionIsRefused() throws {
        var sim = Self.adoptable()
        _ = sim.provider.create(name: "hand-made-2", now: t0 - .days(80))
        try sim.send(.rotateRequested)
        #expect(sim.refusals.last?.contains("waiting to adopt key k2") == true)
        try sim.run { $0.record.current != nil && $0.record.phase == .idle }
        #expect(sim.record.current?.id == "k2")
    }

    @Test func aReloadKeepsTheCatchUpStagger() throws {
        func overdue(_ name: String) -> RotationMachine {
            var record = KeyRecord(name: name, seed: 9)
            record.current = ProviderKeyRef(id: name, name: name, createdAt: t0, generation: 1)
            record.generation = 1
            record.nextDue = t0 + .days(90)
            return RotationMachine(record: record, policy: .test, hooks: hooks, instance: testInstance, workspace: testWorkspace, timeZone: utc)
        }
        let now = t0 + .days(200)
        var machines = (0..<4).map { overdue("k\($0)") }
        _ = Schedule.staggerOverdue(&machines, now: now, spacing: .minutes(10))
        for index in machines.indices { machines[index].apply(policy: .test, hooks: hooks, adopt: nil) }
        #expect(machines.map(\.record.nextDue) == (0..<4).map { now + .minutes(10) * Int64($0) })
    }

    @Test func theCatchUpStaggerSurvivesAWindow() throws {
        var policy = KeyPolicy.test
        policy.window = try RotationWindow(parsing: "Mon..Fri 09:00..17:00")
        var machines: [RotationMachine] = (0..<5).map { index in
            var record = KeyRecord(name: "k\(index)", seed: 9)
            record.current = ProviderKeyRef(id: "k\(index)", name: "k", createdAt: t0, generation: 1)
            record.generation = 1
            record.nextDue = t0 + .days(90)
            return RotationMachine(record: record, policy: policy, hooks: hooks, instance: testInstance, workspace: testWorkspace, timeZone: utc)
        }
        let now = t0 + .days(200) + .hours(10)  // a Saturday evening
        _ = Schedule.staggerOverdue(&machines, now: now, spacing: .minutes(1))
        #expect(Set(machines.compactMap(\.record.nextDue)).count == 5)
    }

    @Test func adoptedKeysGetJitter() throws {
        var dues: Set<Date> = []
        for seed in UInt64(1)...4 {
            var sim = Simulation(record: KeyRecord(name: "a", seed: seed), adopt: "k1")
            _ = sim.provider.create(name: "hand-made", now: t0 - .days(80))
            try sim.run { $0.record.current != nil && $0.record.phase == .idle }
            dues.insert(try #require(sim.record.nextDue))
        }
        #expect(dues.count == 4)
    }

    @Test func anAbsurdRetryAfterIsCapped() throws {
        var sim = Simulation()
        sim.inject.append((match: .create, failure: StepFailure(kind: .rateLimited, code: "http_429", message: "later", retryAfter: .days(3650))))
        try sim.send(.tick)
        #expect(sim.record.retryAt == sim.now + KeyPolicy.test.blockedRetry)
    }

    @Test func dateArithmeticSaturates() {
        #expect(t0 + TimeSpan(milliseconds: .max) == .distantFuture)
        #expect(t0 - TimeSpan(milliseconds: .max) == .distantPast)
    }

    @Test func aRecordThatLostItsSecretDeletesTheKeyItKnew() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 1 }
        sim.now = try #require(sim.record.nextDue)
        // A hand-damaged record: verifying a key the provider has, but with no secret.
        let name = "keyrotd/dev-team/g2/abcdef"
        let stranded = sim.provider.create(name: name, now: sim.now).id
        var record = sim.persisted
        record.phase = .verifying
        record.pending = PendingKey(generation: 2, name: name, createAttempted: true, id: stranded)
        sim.persisted = record
        sim.restart()
        try sim.run { $0.record.generation == 2 && $0.record.phase == .idle }
        #expect(sim.provider.keys[stranded]?.deletedAt != nil)
        #expect(sim.provider.live.count == 1)
    }

    @Test func aMismatchedOutcomeIsAFailureNotAStall() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 2 && $0.record.phase == .overlapping }
        sim.now = try #require(sim.record.previous?.retireAt)
        var machine = sim.machine
        _ = machine.handle(.tick, now: sim.now)
        _ = machine.handle(.listed([]), now: sim.now)
        #expect(machine.awaiting)
        _ = machine.handle(.deleted(keyID: "someone-else"), now: sim.now)
        #expect(!machine.awaiting)
        #expect(machine.record.lastError?.code == "mismatched_outcome")
        #expect(machine.nextDeadline != nil)
    }
}

@Suite struct SweepAndDeferTests {
    /// A create that reached the provider after keyrotd gave up on it (a kill, a
    /// timeout) is deleted at the end of the rotation; keys keyrotd did not name are left alone.
    @Test func strayKeyrotdKeysAreSweptAtTheEndOfARotation() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 2 && $0.record.phase == .overlapping }
        let stray = sim.provider.create(name: "keyrotd/\(testInstance)/dev-team/g2/late00", now: sim.now).id
        let other = sim.provider.create(name: "keyrotd/\(testInstance)/dev-team-other/g1/abcdef", now: sim.now).id
        let manual = sim.provider.create(name: "hand-made", now: sim.now).id
        try sim.run { $0.record.generation == 2 && $0.record.phase == .idle }
        #expect(sim.provider.keys[stray]?.deletedAt != nil)
        #expect(sim.provider.keys[other]?.deletedAt == nil)
        #expect(sim.provider.keys[manual]?.deletedAt == nil)
        #expect(sim.events.contains { $0.kind == .orphanDeleted && $0.keyID == stray })
    }

    @Test func theFirstKeyIsSweptToo() throws {
        var sim = Simulation()
        let early = sim.provider.create(name: "keyrotd/\(testInstance)/dev-team/g1/zzzzzz", now: t0).id
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        #expect(sim.provider.keys[early]?.deletedAt != nil)
        #expect(sim.provider.live.map(\.id) == [sim.record.current!.id])
    }

    @Test func aStateWriteFailureIsNotCountedAgainstTheStep() throws {
        var sim = Simulation()
        for _ in 0..<(RotationMachine.maxVerifyAttempts + 2) {
            sim.inject.append((match: .verify, failure: StepFailure(kind: .deferred, code: "state_write_failed", message: "disk full")))
        }
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        #expect(!sim.events.contains { $0.kind == .blocked })
    }

    @Test func retireHooksSeeTheNewKeyAsKeyIDAndTheRetiredOneAsOld() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 2 && $0.record.phase == .idle }
        let retire = try #require(sim.consumer.hookRuns.last { $0.event == .retire })
        #expect(retire.keyID == sim.record.current?.id)
        #expect(retire.oldKeyID != retire.keyID)
    }
}

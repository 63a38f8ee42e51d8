import Foundation
import Testing
@testable import KeyRotation

/// Usage-aware retirement: at the end of the overlap the old key's `last_used`
/// (a date at the provider) decides whether it is deleted now or the overlap grows.
@Suite struct UsageAwareRetirementTests {
    /// A simulation with its second rotation deployed and the old key in overlap.
    private func inOverlap() throws -> (sim: Simulation, old: String, deployed: Date) {
        var sim = Simulation()
        try sim.run { $0.record.generation == 2 && $0.record.phase == .overlapping }
        let old = try #require(sim.record.previous?.key.id)
        let deployed = try #require(sim.record.previous?.deployedAt)
        return (sim, old, deployed)
    }

    private func kinds(_ sim: Simulation) -> [AuditEvent.Kind] { sim.events.map(\.kind) }

    @Test func anOldKeyNotUsedAfterTheDeployDayIsDeletedWhenTheOverlapEnds() throws {
        var (sim, old, deployed) = try inOverlap()
        sim.provider.usedUntil[old] = deployed  // used up to the deploy, same day
        try sim.run { $0.record.phase == .idle }
        #expect(sim.provider.keys[old]?.deletedAt == deployed + .hours(24))
        #expect(!kinds(sim).contains(.retirementExtended))
        #expect(!kinds(sim).contains(.retirementForced))
    }

    @Test func aKeyStillUsedIsKeptOneOverlapAtATimeAndDeletedAtMaxOverlap() throws {
        var (sim, old, deployed) = try inOverlap()
        sim.provider.usedUntil[old] = .distantFuture  // a consumer that never switches
        try sim.run { $0.record.phase == .idle }
        let deletedAt = try #require(sim.provider.keys[old]?.deletedAt)
        #expect(deletedAt == deployed + .days(7), "kept exactly until max_overlap")
        let extended = sim.events.filter { $0.kind == .retirementExtended }
        #expect(extended.count == 6, "24h overlap, then six one-day extensions up to 7d")
        #expect(extended.allSatisfy { $0.oldKeyID == old && $0.message.contains(old) && $0.message.contains("still holds it") })
        let forced = sim.events.filter { $0.kind == .retirementForced }
        #expect(forced.count == 1)
        #expect(forced.first?.message.contains("deleting it anyway") == true)
        #expect(sim.record.previous == nil)
    }

    @Test func aConsumerThatSwitchesLateLetsTheKeyGoOnTheNextDayWithoutUse() throws {
        var (sim, old, deployed) = try inOverlap()
        // Used on the day after the deploy, then never again.
        sim.provider.usedUntil[old] = deployed + .hours(25)
        try sim.run { $0.record.phase == .idle }
        let deletedAt = try #require(sim.provider.keys[old]?.deletedAt)
        #expect(deletedAt > deployed + .hours(24), "the first look saw use after the deploy day")
        #expect(deletedAt <= deployed + .hours(72), "…and a later look, a day without use")
        #expect(sim.events.filter { $0.kind == .retirementExtended }.count >= 1)
        #expect(!kinds(sim).contains(.retirementForced))
    }

    @Test func revokeNeverWaitsForUsage() throws {
        var (sim, old, _) = try inOverlap()
        sim.provider.usedUntil[old] = .distantFuture
        sim.now = try #require(sim.record.previous?.retireAt)
        // The usage look is in flight when the revoke arrives.
        var machine = sim.machine
        let look = machine.handle(.tick, now: sim.now)
        #expect(look.contains { if case .listKeys = $0 { true } else { false } })
        _ = machine.handle(.revokeRequested, now: sim.now)
        let next = machine.handle(.listed(sim.provider.list(nameContains: nil, now: sim.now)), now: sim.now)
        #expect(next.contains(.deleteKey(id: old)))
    }

    @Test func revokeDuringAnExtensionDeletesAtOnce() throws {
        var (sim, old, _) = try inOverlap()
        sim.provider.usedUntil[old] = .distantFuture
        try sim.run { ($0.record.previous?.extensions ?? 0) >= 1 }
        try sim.send(.revokeRequested)
        #expect(sim.provider.keys[old]?.deletedAt == sim.now)
    }

    @Test func withMaxOverlapEqualToOverlapTheProviderIsNotAsked() throws {
        var policy = KeyPolicy.test
        policy.maxOverlap = policy.overlap
        var sim = Simulation(policy: policy)
        try sim.run { $0.record.generation == 2 && $0.record.phase == .overlapping }
        let old = try #require(sim.record.previous?.key.id)
        sim.provider.usedUntil[old] = .distantFuture
        var machine = sim.machine
        let actions = machine.handle(.tick, now: try #require(sim.record.previous?.retireAt))
        #expect(actions.contains(.deleteKey(id: old)))
        #expect(!actions.contains { if case .listKeys = $0 { true } else { false } })
    }

    @Test func aFailedUsageLookIsRetriedBeforeAnythingIsDeleted() throws {
        var (sim, old, deployed) = try inOverlap()
        sim.inject.append((.list, StepFailure(kind: .transient, code: "http_503", message: "unavailable")))
        try sim.run { $0.record.phase == .idle }
        #expect(sim.events.contains { $0.kind == .stepFailed && $0.failure?.code == "http_503" })
        let deletedAt = try #require(sim.provider.keys[old]?.deletedAt)
        #expect(deletedAt > deployed + .hours(24), "deleted only after a look that succeeded, later")
    }

    @Test func aRevokeIsNotHeldUpByAUsageLookBackingOff() throws {
        var (sim, old, _) = try inOverlap()
        sim.inject.append((.list, StepFailure(kind: .transient, code: "http_503", message: "unavailable")))
        try sim.run { $0.record.lastError?.code == "http_503" }
        #expect(sim.record.retryAt != nil)
        try sim.send(.revokeRequested)
        #expect(sim.provider.keys[old]?.deletedAt == sim.now)
    }

    @Test func aUsageLookThatKeepsFailingNeverKeepsTheKeyPastMaxOverlap() throws {
        var (sim, old, deployed) = try inOverlap()
        sim.provider.usedUntil[old] = .distantFuture
        for _ in 0..<2_000 {
            sim.inject.append((.list, StepFailure(kind: .needsOperator, code: "http_403", message: "not allowed")))
        }
        try sim.run { $0.record.phase == .idle }
        let deletedAt = try #require(sim.provider.keys[old]?.deletedAt)
        #expect(deletedAt == deployed + .days(7))
    }

    @Test func extensionsSurviveACrashAtEveryStep() throws {
        let reference = try inOverlap()
        var base = reference.sim
        base.provider.usedUntil[reference.old] = .distantFuture
        // Count the actions of an uninterrupted run, then crash after each one.
        var probe = base
        let start = probe.actions
        try probe.run { $0.record.phase == .idle }
        for crash in (start + 1)...probe.actions {
            var sim = base
            sim.crashAfter = [crash]
            try sim.run { $0.record.phase == .idle && $0.record.generation == 2 }
            let deletedAt = try #require(sim.provider.keys[reference.old]?.deletedAt)
            #expect(deletedAt >= reference.deployed + .days(7), "crash after action \(crash)")
            #expect(sim.provider.live.count == 1)
        }
    }

    @Test(arguments: [
        // last used, deployed, last look, still used?
        ("2026-11-27T23:59:00Z", "2026-11-27T10:00:00Z", nil as String?, false),
        ("2026-11-28T00:00:00Z", "2026-11-27T23:59:59Z", nil, true),
        ("2026-11-28T00:00:00Z", "2026-11-27T10:00:00Z", "2026-11-28T10:00:00Z", true),
        ("2026-11-28T00:00:00Z", "2026-11-27T10:00:00Z", "2026-11-29T10:00:00Z", false),
        ("2026-11-29T00:00:00Z", "2026-11-27T10:00:00Z", "2026-11-29T10:00:00Z", true),
    ])
    func stillUsedIsDecidedByTheDay(lastUsed: String, deployed: String, lastLook: String?, expected: Bool) throws {
        let used = try #require(Timestamp.parse(lastUsed))
        let deployedAt = try #require(Timestamp.parse(deployed))
        let look = try lastLook.map { try #require(Timestamp.parse($0)) }
        #expect(RotationMachine.stillUsed(lastUsed: used, deployedAt: deployedAt, lastLook: look) == expected)
    }
}

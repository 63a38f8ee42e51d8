import Foundation
import Testing
@testable import KeyRotation

/// Kill the engine between any two actions of a whole rotation, restart from the
/// last persisted record, run to the end, and check the promises hold.
@Suite struct CrashConsistencyTests {
    /// A first key, then one full rotation (generation 2, overlap passed, old key gone).
    static func done(_ sim: Simulation) -> Bool {
        sim.record.generation == 2 && sim.record.phase == .idle && sim.record.previous == nil
    }

    static let cleanRunLength: Int = {
        var sim = Simulation()
        try? sim.run(until: done)
        return sim.actions
    }()

    static var crashPoints: [Int] { Array(1...cleanRunLength) }

    @Test func theCleanRunIsLongEnoughToMatter() {
        #expect(Self.cleanRunLength > 30)
    }

    @Test(arguments: crashPoints)
    func crashAfterAction(_ point: Int) throws {
        var sim = Simulation()
        sim.crashAfter = [point]
        try sim.run(until: Self.done)
        try Self.checkInvariants(sim)
    }

    /// The same, through an emergency revoke requested while the first key is idle.
    @Test(arguments: Array(1...40))
    func crashDuringARevoke(_ point: Int) throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        sim.now = sim.now + .days(3)
        let before = sim.actions
        sim.crashAfter = [before + point]
        try sim.send(.revokeRequested)
        try sim.run(until: Self.done)
        let current = try #require(sim.record.current)
        #expect(sim.provider.live.map(\.id) == [current.id])
        #expect(sim.consumer.secret == sim.provider.keys[current.id]?.secret)
    }

    /// The same, with every kind of step failing once on the way.
    @Test(arguments: crashPoints.filter { $0 % 2 == 1 })
    func crashWithFailures(_ point: Int) throws {
        var sim = Simulation()
        let failure = StepFailure(kind: .transient, code: "http_503", message: "unavailable")
        sim.inject = [(.create, failure), (.verify, failure), (.hook("/hooks/b"), failure), (.list, failure), (.delete, failure)]
        sim.crashAfter = [point]
        try sim.run(until: Self.done)
        try Self.checkInvariants(sim)
    }

    /// Two crashes in one run, the second soon after the first restart.
    @Test(arguments: crashPoints.filter { $0 % 3 == 0 })
    func crashTwice(_ point: Int) throws {
        var sim = Simulation()
        sim.crashAfter = [point, point + 2]
        try sim.run(until: Self.done)
        try Self.checkInvariants(sim)
    }

    static func checkInvariants(_ sim: Simulation) throws {
        let current = try #require(sim.record.current)
        // Exactly one key at the provider: the current one. No orphan survives.
        #expect(sim.provider.live.map(\.id) == [current.id])
        // The consumer holds the current key's secret and the provider accepts it.
        let secret = try #require(sim.consumer.secret)
        #expect(secret == sim.provider.keys[current.id]?.secret)
        #expect(sim.provider.accepts(secret))
        // No secret is left in the state once deployed.
        #expect(sim.record.pending == nil)
        // The old (generation 1) key was deleted only after the new key was deployed
        // by every hook, and the full overlap had passed.
        let deployedKeys = sim.consumer.deployedAt.sorted { $0.value < $1.value }
        #expect(deployedKeys.count == 2)
        let (oldID, _) = deployedKeys[0]
        let (newID, newDeployed) = deployedKeys[1]
        #expect(newID == current.id)
        let deletedAt = try #require(sim.provider.keys[oldID]?.deletedAt)
        #expect(deletedAt >= newDeployed + KeyPolicy.test.overlap)
        // Keys that were created but never deployed (lost to a crash) are all gone.
        for key in sim.provider.keys.values where sim.consumer.deployedAt[key.id] == nil {
            #expect(key.deletedAt != nil, "orphan \(key.id) \(key.name) survived")
        }
    }
}

import Foundation
import Testing
@testable import KeyRotation

/// Two keyrotd deployments in one organisation, the same key name in both: the
/// machine only ever deletes keys named for its instance, in its key's workspace.
@Suite struct SharedOrganisationMachineTests {
    @Test func theSweepLeavesAnotherInstancesAndAnotherWorkspacesKeysAlone() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 2 && $0.record.phase == .overlapping }
        let theirs = sim.provider.create(name: "keyrotd/inst-b/dev-team/g2/aaaaaa", now: sim.now).id
        let theirsLegacy = sim.provider.create(name: "keyrotd/dev-team/g2/bbbbbb", now: sim.now).id
        let otherWorkspace = sim.provider.create(name: "keyrotd/\(testInstance)/dev-team/g2/cccccc", now: sim.now, workspace: "ws-b").id
        let keyNamedLikeUs = sim.provider.create(name: "keyrotd/dev-team/\(testInstance)/g2/dddddd", now: sim.now).id
        let stray = sim.provider.create(name: "keyrotd/\(testInstance)/dev-team/g2/eeeeee", now: sim.now).id
        try sim.run { $0.record.generation == 2 && $0.record.phase == .idle }
        #expect(sim.provider.keys[stray]?.deletedAt != nil, "this instance's stray in its workspace is swept")
        for id in [theirs, theirsLegacy, otherWorkspace, keyNamedLikeUs] {
            #expect(sim.provider.keys[id]?.deletedAt == nil, "\(sim.provider.keys[id]?.name ?? id) was deleted")
        }
    }

    @Test func newKeysAreNamedForTheInstance() throws {
        var sim = Simulation()
        try sim.run { $0.record.generation == 1 && $0.record.phase == .idle }
        let current = try #require(sim.record.current?.name)
        let name = try #require(ProviderKeyName(current))
        #expect(name.instance == testInstance)
        #expect(name.key == "dev-team")
        #expect(name.generation == 1)
    }

    /// An upgrade: the record knows keys of the old scheme by id. They are rotated
    /// and retired like any other (no rotation storm), and the next key has the new name.
    @Test func oldSchemeKeysARecordKnowsStayManaged() throws {
        var sim = Simulation()
        let old = sim.provider.create(name: "keyrotd/dev-team/g1/abcdef", now: t0 - .days(10))
        var record = KeyRecord(name: "dev-team", seed: 7)
        record.current = ProviderKeyRef(id: old.id, name: old.name, createdAt: old.createdAt, generation: 1)
        record.generation = 1
        record.nextDue = t0 + .days(80)
        sim.persisted = record
        sim.consumer.secret = old.secret
        sim.restart()
        try sim.send(.tick)
        #expect(sim.record.phase == .idle, "nothing due: an upgrade alone starts no rotation")
        #expect(sim.provider.keys[old.id]?.deletedAt == nil)
        sim.now = t0 + .days(80)
        try sim.run { $0.record.generation == 2 && $0.record.phase == .idle }
        #expect(sim.provider.keys[old.id]?.deletedAt != nil, "retired as the previous key")
        #expect(ProviderKeyName(sim.record.current?.name ?? "")?.instance == testInstance)
        #expect(sim.provider.live.count == 1)
    }

    /// A create whose outcome was lost is reconciled by its exact name, and only in
    /// the key's workspace: a key of that name elsewhere is not this create's.
    @Test func theReconcileOnlyConsidersTheKeysWorkspace() throws {
        var record = KeyRecord(name: "dev-team", seed: 7)
        let name = "keyrotd/\(testInstance)/dev-team/g1/abcdef"
        record.phase = .creating
        record.pending = PendingKey(generation: 1, name: name, createAttempted: true)
        var machine = RotationMachine(
            record: record, policy: .test, hooks: hooks, instance: testInstance, workspace: testWorkspace, timeZone: utc)
        #expect(machine.handle(.tick, now: t0).last == .listKeys(nameContains: name))
        let elsewhere = ListedKey(id: "k-b", name: name, createdAt: t0, workspaceID: "ws-b")
        let afterElsewhere = machine.handle(.listed([elsewhere]), now: t0)
        guard case .createKey? = afterElsewhere.last else {
            Issue.record("a key in another workspace was taken for this create: \(afterElsewhere)")
            return
        }
        var again = RotationMachine(
            record: record, policy: .test, hooks: hooks, instance: testInstance, workspace: testWorkspace, timeZone: utc)
        _ = again.handle(.tick, now: t0)
        let here = ListedKey(id: "k-a", name: name, createdAt: t0, workspaceID: testWorkspace)
        #expect(again.handle(.listed([here, elsewhere]), now: t0).last == .deleteKey(id: "k-a"))
        #expect(again.record.pending?.orphans == ["k-a"])
    }

    @Test(arguments: [
        ("keyrotd/prod/app/g3/0a1b2c", ProviderKeyName(instance: "prod", key: "app", generation: 3, rotationID: "0a1b2c")),
        ("keyrotd/app/g3/0a1b2c", ProviderKeyName(instance: nil, key: "app", generation: 3, rotationID: "0a1b2c")),
        ("keyrotd/g1/g2/x", ProviderKeyName(instance: nil, key: "g1", generation: 2, rotationID: "x")),
    ])
    func namesParse(_ text: String, _ expected: ProviderKeyName) {
        #expect(ProviderKeyName(text) == expected)
        #expect(ProviderKeyName(text)?.description == text)
    }

    @Test(arguments: [
        "keyrotd/app/g3", "keyrotd/a/b/c/g1/x", "keyrotd//app/g1/x", "keyrotd/prod/app/3/x", "keyrotd/prod/app/g/x",
        "keyrotd/prod/app/g+3/x", "keyrotd/prod/app/g3/", "xkeyrotd/prod/app/g3/x", "keyrotd/pr od/app/g3/x",
        "keyrotd/\(String(repeating: "i", count: 33))/app/g3/x", "hand-made",
    ])
    func otherNamesDoNot(_ text: String) {
        #expect(ProviderKeyName(text) == nil)
    }

    @Test func aDrawnInstanceIsEightHexDigitsAndValid() {
        let drawn = (0..<50).map { _ in ProviderKeyName.randomInstance() }
        for name in drawn {
            #expect(name.count == 8 && name.allSatisfy { $0.isHexDigit && !$0.isUppercase }, "\(name)")
            #expect(ProviderKeyName.isValidInstance(name))
        }
        #expect(Set(drawn).count > 45, "a real random source")
    }

    @Test func theConfiguredInstanceWinsThenTheStatesThenADraw() {
        #expect(InstanceChoice.resolve(configured: "prod", persisted: nil, draw: { "x" }) == InstanceChoice(instance: "prod", origin: .configured))
        #expect(InstanceChoice.resolve(configured: "prod", persisted: "prod", draw: { "x" }) == InstanceChoice(instance: "prod", origin: .configured))
        #expect(InstanceChoice.resolve(configured: "prod", persisted: "1a2b3c4d", draw: { "x" })
            == InstanceChoice(instance: "prod", origin: .configuredReplacing("1a2b3c4d")))
        #expect(InstanceChoice.resolve(configured: nil, persisted: "1a2b3c4d", draw: { "x" }) == InstanceChoice(instance: "1a2b3c4d", origin: .persisted))
        #expect(InstanceChoice.resolve(configured: nil, persisted: nil, draw: { "5e6f7a8b" }) == InstanceChoice(instance: "5e6f7a8b", origin: .drawn))
    }
}

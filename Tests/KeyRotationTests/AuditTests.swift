import Foundation
import Testing
@testable import KeyRotation

/// The audit's fixtures: provider keys, state records and managed keys around `t0`.
private enum Fixture {
    static let now = t0
    static let staleAfter = TimeSpan.days(30)
    /// This keyrotd's instance; its managed keys live in workspace "ws".
    static let instance = "prod"

    static func managed(_ name: String, rotateEvery: TimeSpan = .days(90)) -> ManagedKey {
        var policy = KeyPolicy.standard
        policy.rotateEvery = rotateEvery
        return ManagedKey(
            name: name, provider: "mistral", workspace: "ws", user: "u", hooks: [], adopt: nil, policy: policy)
    }

    static func listed(
        _ id: String, _ name: String, created: TimeSpan, lastUsed: TimeSpan? = nil, expires: Date? = nil,
        workspace: String = "ws"
    ) -> ListedKey {
        ListedKey(
            id: id, name: name, createdAt: now - created, workspaceID: workspace, lastUsed: lastUsed.map { now - $0 },
            expiresOn: expires)
    }

    static func record(_ name: String, current: ListedKey?, nextDue: Date? = nil) -> KeyRecord {
        var record = KeyRecord(name: name, seed: 1)
        record.current = current.map { ProviderKeyRef(id: $0.id, name: $0.name, createdAt: $0.createdAt, generation: 1) }
        record.generation = 1
        record.nextDue = nextDue
        return record
    }

    static func retiring(_ key: ListedKey, retireAt: Date) -> RetiringKey {
        RetiringKey(
            key: ProviderKeyRef(id: key.id, name: key.name, createdAt: key.createdAt, generation: 1),
            retireAt: retireAt, deleted: false, hooksDone: [])
    }

    /// A UTC midnight `days` from now, as Mistral gives expiration dates.
    static func day(_ days: Int64) -> Date {
        let midnight = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 86400).rounded(.down) * 86400)
        return days >= 0 ? midnight + .days(days) : midnight - .days(-days)
    }

    static func run(
        _ keys: [ListedKey], _ records: [KeyRecord], configured: [ManagedKey], now: Date = now
    ) -> AuditReport {
        Audit.run(
            keys: keys, records: Dictionary(uniqueKeysWithValues: records.map { ($0.name, $0) }),
            configured: configured, instance: instance, staleAfter: staleAfter, now: now)
    }
}

private typealias F = Fixture

@Suite struct AuditTests {
    /// One of everything: each finding reported once, and nothing where nothing is wrong.
    struct Mix {
        let devCurrent = F.listed("k-dev2", "keyrotd/dev-team/g2/bbbbbb", created: .days(10), lastUsed: .hours(1), expires: F.day(100))
        let devRetiring = F.listed("k-dev1", "keyrotd/dev-team/g1/aaaaaa", created: .days(100), lastUsed: .hours(2), expires: F.day(20))
        let batchCurrent = F.listed("k-batch1", "keyrotd/batch/g1/cccccc", created: .days(89), lastUsed: .days(1))
        let batchInFlight = F.listed("k-batch2", "keyrotd/batch/g2/dddddd", created: .minutes(1))
        let unmanaged = F.listed("k-ci", "ci-bot", created: .days(10), lastUsed: .days(1))
        let unconfigured = F.listed("k-legacy", "keyrotd/legacy/g1/eeeeee", created: .days(5), lastUsed: .hours(1))
        let orphan = F.listed("k-orphan", "keyrotd/prod/dev-team/g1/ffffff", created: .days(3))
        let stale = F.listed("k-stale", "analytics", created: .days(60), lastUsed: .days(45))
        let neverUsedNew = F.listed("k-new", "fresh", created: .days(2))
        let neverUsedOld = F.listed("k-idle", "idle", created: .days(31))
        let overAge = F.listed("k-ops1", "keyrotd/ops/g1/gggggg", created: .days(40), lastUsed: .hours(1))
        let ancient = F.listed("k-ancient", "ancient", created: .days(200), lastUsed: .hours(1))
        let soonExpiring = F.listed("k-web1", "keyrotd/web/g1/hhhhhh", created: .days(10), lastUsed: .hours(1), expires: F.day(20))
        let expired = F.listed("k-partner", "old-partner", created: .days(20), lastUsed: .days(1), expires: F.day(-3))

        var keys: [ListedKey] {
            [devCurrent, devRetiring, batchCurrent, batchInFlight, unmanaged, unconfigured, orphan, stale,
             neverUsedNew, neverUsedOld, overAge, ancient, soonExpiring, expired]
        }

        var configured: [ManagedKey] {
            [F.managed("dev-team"), F.managed("batch"), F.managed("ops", rotateEvery: .days(30)), F.managed("web"), F.managed("lost")]
        }

        var records: [KeyRecord] {
            var dev = F.record("dev-team", current: devCurrent, nextDue: F.now + .days(80))
            dev.phase = .overlapping
            dev.previous = F.retiring(devRetiring, retireAt: F.now - .days(1))
            var batch = F.record("batch", current: batchCurrent)
            batch.phase = .creating
            batch.pending = PendingKey(generation: 2, name: batchInFlight.name, createAttempted: true)
            let lost = F.record("lost", current: F.listed("k-lost", "keyrotd/lost/g1/iiiiii", created: .days(5)), nextDue: F.now + .days(85))
            return [
                dev, batch, lost,
                F.record("legacy", current: unconfigured, nextDue: F.now + .days(85)),
                F.record("ops", current: overAge, nextDue: F.now - .days(10)),
                F.record("web", current: soonExpiring, nextDue: F.now + .days(80)),
            ]
        }

        func run() -> AuditReport { F.run(keys, records, configured: configured) }
    }

    @Test func eachFindingOfASeededMixIsReportedExactlyOnce() {
        let mix = Mix()
        let report = mix.run()
        let found = report.findings.map { "\($0.kind.rawValue) \($0.keyID ?? "-") \($0.key ?? "-")" }
        #expect(found == [
            "unmanaged k-stale -", "stale k-stale -",
            "unmanaged k-ancient -", "over-age k-ancient -",
            "unmanaged k-ci -",
            "unmanaged k-new -",
            "unmanaged k-idle -", "stale k-idle -",
            "unmanaged k-legacy legacy",
            "over-age k-ops1 ops",
            "orphan k-orphan dev-team",
            "expiring k-web1 web",
            "unmanaged k-partner -", "expiring k-partner -",
            "missing - lost",
        ])
        #expect(Set(report.findings.map(\.id)).count == report.findings.count)
        #expect(report.generatedAt == t0)
        #expect(report.keys.count == mix.keys.count)
        #expect(report.spend == nil && report.spendError == nil)
    }

    @Test func rolesAndOwnersOfTheMix() {
        let report = Mix().run()
        let roles = Dictionary(uniqueKeysWithValues: report.keys.map { ($0.id, "\($0.role?.rawValue ?? "-") \($0.managedAs ?? "-")") })
        #expect(roles == [
            "k-dev2": "current dev-team", "k-dev1": "retiring dev-team",
            "k-batch1": "current batch", "k-batch2": "pending batch",
            "k-ci": "- -", "k-legacy": "unconfigured legacy", "k-orphan": "- -",
            "k-stale": "- -", "k-new": "- -", "k-idle": "- -",
            "k-ops1": "current ops", "k-ancient": "- -", "k-web1": "current web", "k-partner": "- -",
        ])
    }

    @Test func keysAreSortedByNameThenIDAndFindingsByKind() {
        let keys = [
            F.listed("b", "same", created: .days(100)),
            F.listed("a", "same", created: .days(100)),
            F.listed("c", "keyrotd/x/g1/zzzzzz", created: .days(1)),
            F.listed("d", "Alpha", created: .days(1), expires: F.day(-1)),
        ]
        let report = F.run(keys, [], configured: [F.managed("x")])
        #expect(report.keys.map(\.id) == ["d", "c", "a", "b"])
        #expect(report.keys[2].findings.map(\.kind) == [.unmanaged, .stale, .overAge])
        #expect(report.keys[0].findings.map(\.kind) == [.unmanaged, .expiring])
        for key in report.keys {
            let order = key.findings.map { AuditFinding.Kind.allCases.firstIndex(of: $0.kind) ?? 0 }
            #expect(order == order.sorted())
        }
    }

    // MARK: - Ownership

    @Test func aKeyNamedByACreateInFlightIsPendingNotAnOrphan() {
        let inFlight = F.listed("k2", "keyrotd/prod/a/g2/abcdef", created: .days(40))
        var record = F.record("a", current: nil)
        record.phase = .creating
        record.pending = PendingKey(generation: 2, name: inFlight.name, createAttempted: true)
        let report = F.run([inFlight], [record], configured: [F.managed("a")])
        #expect(report.keys[0].role == .pending)
        #expect(report.keys[0].managedAs == "a")
        #expect(report.findings.isEmpty, "a pending key is never stale: \(report.findings)")

        // Once the create is known, only its id counts: another key of that name is an orphan.
        record.pending?.id = "k3"
        let again = F.run([inFlight], [record], configured: [F.managed("a")])
        #expect(again.keys[0].role == nil)
        #expect(again.findings.map(\.kind) == [.orphan, .stale])
    }

    @Test func aCreatedPendingKeyIsKnownByItsID() {
        let pending = F.listed("k2", "whatever", created: .days(40))
        var record = F.record("a", current: nil)
        record.phase = .verifying
        record.pending = PendingKey(generation: 2, name: "keyrotd/a/g2/abcdef", createAttempted: true, id: "k2")
        let report = F.run([pending], [record], configured: [F.managed("a")])
        #expect(report.keys[0].role == .pending)
        #expect(report.findings.isEmpty)
    }

    @Test func aRecordRemovedFromTheConfigurationMakesItsKeysUnconfigured() {
        let current = F.listed("k1", "keyrotd/gone/g2/aaaaaa", created: .days(2), lastUsed: .hours(1))
        let previous = F.listed("k0", "keyrotd/gone/g1/bbbbbb", created: .days(92), lastUsed: .days(40))
        var record = F.record("gone", current: current, nextDue: F.now + .days(88))
        record.previous = F.retiring(previous, retireAt: F.now + .days(1))
        let report = F.run([current, previous], [record], configured: [F.managed("other")])
        #expect(report.keys.map(\.role) == [.unconfigured, .unconfigured])
        let unmanaged = report.keys[1].findings[0]
        #expect(unmanaged.kind == .unmanaged)
        #expect(unmanaged.key == "gone")
        #expect(unmanaged.message.contains("k1"))
        #expect(unmanaged.message.contains("removed from the configuration"))
        #expect(unmanaged.message.contains("no longer rotated"))
        #expect(report.keys[0].findings.map(\.kind) == [.unmanaged, .stale, .overAge],
                "an unconfigured key is held to the longest policy here")
        #expect(report.other.isEmpty, "missing is only for configured keys")
    }

    @Test func anOrphanNamesItsManagedKeyAndTheRemedy() throws {
        let orphan = F.listed("k9", "keyrotd/prod/dev-team/g3/abcdef", created: .hours(2))
        let report = F.run([orphan], [], configured: [F.managed("dev-team")])
        let finding = try #require(report.findings.first)
        #expect(report.findings.count == 1)
        #expect(finding.kind == .orphan)
        #expect(finding.keyID == "k9")
        #expect(finding.key == "dev-team")
        #expect(finding.remedy == "keyrotd delete-orphan k9")
        #expect(finding.message.contains("secret is lost"))
        #expect(finding.message.contains("interrupted create or a crash"))
        #expect(report.keys[0].managedAs == nil, "an orphan is not managed")
    }

    /// Another keyrotd sharing the organisation names its keys the same way: a
    /// keyrotd-named key of a key this one never had is unmanaged, never an orphan.
    @Test func aKeyrotdKeyOfAKeyThisKeyrotdNeverHadIsNotAnOrphan() throws {
        let foreign = F.listed("k7", "keyrotd/prod/other-team/g4/abcdef", created: .hours(2))
        let report = F.run([foreign], [], configured: [F.managed("dev-team")])
        #expect(report.findings.map(\.kind) == [.unmanaged])
        #expect(report.findings.first?.remedy == nil)
        #expect(report.findings.first?.message.contains("another keyrotd") == true)
        // …but a key removed from the configuration still has its record: its orphans are ours.
        let removed = F.run([foreign], [F.record("other-team", current: nil)], configured: [F.managed("dev-team")])
        #expect(removed.findings.map(\.kind) == [.orphan])
    }

    @Test func aKeyWaitingToBeAdoptedIsNeitherUnmanagedNorAnOrphan() throws {
        let waiting = F.listed("k8", "keyrotd/dev-team/g1/abcdef", created: .hours(2))
        var managed = F.managed("dev-team")
        managed.adopt = "k8"
        let report = F.run([waiting], [F.record("dev-team", current: nil)], configured: [managed])
        #expect(report.findings.isEmpty, "\(report.findings)")
    }

    @Test func anUnmanagedKeyIsNotManagedByThisKeyrotd() throws {
        let report = F.run([F.listed("k1", "prod\nline", created: .days(1))], [], configured: [])
        let finding = try #require(report.findings.first)
        #expect(finding.kind == .unmanaged)
        #expect(finding.key == nil)
        #expect(finding.remedy == nil)
        #expect(finding.message == "key k1 \"prod?line\" is not managed by this keyrotd")
    }

    // MARK: - Stale

    @Test func staleMeansUnusedForLongerThanStaleAfter() {
        let keys = [
            F.listed("used-just-in-time", "a", created: .days(100), lastUsed: .days(30)),
            F.listed("used-too-long-ago", "b", created: .days(100), lastUsed: .days(30) + .seconds(1)),
            F.listed("never-used-new", "c", created: .days(30)),
            F.listed("never-used-old", "d", created: .days(30) + .seconds(1)),
        ]
        let report = F.run(keys, [], configured: [])
        let stale = report.findings.filter { $0.kind == .stale }
        #expect(stale.map(\.keyID) == ["used-too-long-ago", "never-used-old"])
        #expect(stale[0].message.contains("last used 30d ago"))
        #expect(stale[1].message.contains("never been used"))
        #expect(stale.allSatisfy { $0.message.contains("stale_after 30d") })
    }

    @Test func managedKeysAreStaleToo() {
        let key = F.listed("k1", "keyrotd/a/g1/aaaaaa", created: .days(50), lastUsed: .days(40))
        let report = F.run([key], [F.record("a", current: key, nextDue: F.now + .days(40))], configured: [F.managed("a")])
        #expect(report.findings.map(\.kind) == [.stale])
        #expect(report.findings[0].key == "a")
        #expect(report.findings[0].message.hasPrefix("key k1 of a was last used 40d ago"))
    }

    // MARK: - Over age

    @Test func aCurrentKeyIsOverAgePastRotateEveryPlusJitterPlusMaxOverlap() {
        // 90d + 6h + 7d
        let limit = TimeSpan.days(97) + .hours(6)
        let young = F.listed("young", "keyrotd/a/g1/aaaaaa", created: limit, lastUsed: .hours(1))
        let old = F.listed("old", "keyrotd/b/g1/bbbbbb", created: limit + .seconds(1), lastUsed: .hours(1))
        let report = F.run(
            [young, old],
            [F.record("a", current: young, nextDue: F.now), F.record("b", current: old, nextDue: F.now)],
            configured: [F.managed("a"), F.managed("b")])
        #expect(report.findings.map(\.keyID) == ["old"])
        let finding = report.findings[0]
        #expect(finding.kind == .overAge)
        #expect(finding.key == "b")
        #expect(finding.remedy == "keyrotd rotate b")
        #expect(finding.message == "key old of b is 97d 6h old, older than its policy allows (rotate_every 90d + jitter 6h + max_overlap 7d)")
    }

    @Test func aRetiringKeyIsOverAgeOnlyPastRetireAtPlusMaxOverlap() {
        let current = F.listed("new", "keyrotd/a/g2/aaaaaa", created: .days(9), lastUsed: .hours(1))
        let previous = F.listed("old", "keyrotd/a/g1/bbbbbb", created: .days(200), lastUsed: .hours(1))
        var record = F.record("a", current: current, nextDue: F.now + .days(80))
        record.previous = F.retiring(previous, retireAt: F.now - .days(7))
        let onTime = F.run([current, previous], [record], configured: [F.managed("a")])
        #expect(onTime.findings.isEmpty, "\(onTime.findings)")

        record.previous?.retireAt = F.now - .days(8)
        let late = F.run([current, previous], [record], configured: [F.managed("a")])
        #expect(late.findings.map(\.kind) == [.overAge])
        #expect(late.findings[0].message.hasPrefix("retiring key old of a is still at the provider 8d after its overlap ended"))
    }

    @Test func anUnmanagedKeyIsOverAgePastTheLongestRotation() {
        let keys = [
            F.listed("u100", "u100", created: .days(100), lastUsed: .hours(1)),
            F.listed("u120", "u120", created: .days(120) + .seconds(1), lastUsed: .hours(1)),
            F.listed("o121", "keyrotd/x/g1/aaaaaa", created: .days(121), lastUsed: .hours(1)),
        ]
        let configured = [F.managed("a", rotateEvery: .days(30)), F.managed("b", rotateEvery: .days(120))]
        let report = F.run(keys, [], configured: configured)
        let overAge = report.findings.filter { $0.kind == .overAge }
        #expect(overAge.map(\.keyID) == ["o121", "u120"])
        #expect(overAge.allSatisfy { $0.message.contains("older than any rotation policy here allows (longest rotate_every 120d)") })

        let nothingConfigured = F.run(keys, [], configured: [])
        #expect(!nothingConfigured.findings.contains { $0.kind == .overAge }, "no policy here: nothing to compare with")
    }

    // MARK: - Expiring

    @Test func aCurrentKeyExpiringBeforeItsNextRotationAndOverlapIsFlagged() throws {
        let due = F.now + .days(20)
        func audit(expires: Date) -> [AuditFinding] {
            let key = F.listed("k1", "keyrotd/a/g1/aaaaaa", created: .days(1), lastUsed: .hours(1), expires: expires)
            return F.run([key], [F.record("a", current: key, nextDue: due)], configured: [F.managed("a")]).findings
        }
        #expect(audit(expires: due + .hours(24)).isEmpty, "valid through the overlap")
        let early = audit(expires: due + .hours(23))
        #expect(early.map(\.kind) == [.expiring])
        #expect(early[0].remedy == "keyrotd rotate a")
        #expect(early[0].message.contains("before its next rotation (\(Timestamp.format(due))) and overlap 1d are over"))

        let midnight = F.day(19)
        let byDay = try #require(audit(expires: midnight).first)
        #expect(byDay.message.hasPrefix("key k1 of a expires on 2026-10-10,"))
    }

    @Test func anExpiredKeyIsExpiringWhateverItsRole() {
        let current = F.listed("cur", "keyrotd/a/g2/aaaaaa", created: .days(10), lastUsed: .hours(1), expires: F.day(-3))
        let previous = F.listed("prev", "keyrotd/a/g1/bbbbbb", created: .days(20), lastUsed: .hours(1), expires: F.now)
        var record = F.record("a", current: current, nextDue: F.now + .days(80))
        record.previous = F.retiring(previous, retireAt: F.now + .hours(1))
        let report = F.run([current, previous], [record], configured: [F.managed("a")])
        #expect(report.findings.map(\.kind) == [.expiring, .expiring])
        #expect(report.findings[0].message == "retiring key prev of a expired on \(Timestamp.format(F.now)) (0s ago)")
        #expect(report.findings[0].remedy == nil)
        #expect(report.findings[1].message.hasPrefix("key cur of a expired on 2026-09-18 (3d 14h ago)"))
        #expect(report.findings[1].remedy == "keyrotd rotate a")
    }

    @Test func anUnmanagedKeyIsExpiringWithinStaleAfter() {
        let keys = [
            F.listed("soon", "soon", created: .days(1), lastUsed: .hours(1), expires: F.now + .days(29)),
            F.listed("later", "later", created: .days(1), lastUsed: .hours(1), expires: F.now + .days(31)),
        ]
        let report = F.run(keys, [], configured: [])
        let expiring = report.findings.filter { $0.kind == .expiring }
        #expect(expiring.map(\.keyID) == ["soon"])
        #expect(expiring[0].message.hasSuffix("(in 29d)"))
    }

    // MARK: - Missing

    @Test func aConfiguredKeyWhoseCurrentKeyIsGoneIsMissing() throws {
        let record = F.record("a", current: F.listed("k1", "keyrotd/a/g1/aaaaaa", created: .days(1)), nextDue: F.now)
        let report = F.run([], [record, F.record("b", current: nil)], configured: [F.managed("a"), F.managed("b")])
        let finding = try #require(report.other.first)
        #expect(report.other.count == 1)
        #expect(finding.kind == .missing)
        #expect(finding.keyID == nil)
        #expect(finding.key == "a")
        #expect(finding.id == "missing:a")
        #expect(finding.remedy == "keyrotd rotate a")
        #expect(finding.message == "the current key k1 of a is not at the provider: consumers may hold a key the provider no longer knows")
    }

    // MARK: - Messages

    @Test func messagesAreOneLineAndNeverCarryASecret() throws {
        var mix = Mix().records
        let index = try #require(mix.firstIndex { $0.name == "batch" })
        mix[index].pending?.secret = Secret("sk-super-secret-123")
        let report = F.run(Mix().keys, mix, configured: Mix().configured)
        let json = String(decoding: try Timestamp.stableJSONEncoder().encode(report), as: UTF8.self)
        #expect(!json.contains("sk-super-secret-123"))
        for finding in report.findings {
            #expect(!finding.message.contains("\n"))
            #expect(finding.message.contains(finding.keyID ?? finding.key ?? "?"))
            if let key = finding.key { #expect(finding.message.contains(key), "\(finding.message)") }
        }
    }

    // MARK: - Reported once

    @Test func newFindingsAreReportedOnceAndAgainAfterTheyComeBack() {
        let mix = Mix()
        var memory = AuditMemory()
        let first = mix.run()
        #expect(Audit.newFindings(in: first, memory: &memory) == first.findings)
        #expect(memory.reported == first.findings.map(\.id))
        #expect(memory.lastRun == t0)

        let second = F.run(mix.keys, mix.records, configured: mix.configured, now: t0 + .seconds(1))
        #expect(Audit.newFindings(in: second, memory: &memory).isEmpty)
        #expect(memory.lastRun == t0 + .seconds(1))

        // The unmanaged ci-bot key is deleted: its finding is dropped, the rest are not repeated.
        let without = F.run(mix.keys.filter { $0.id != "k-ci" }, mix.records, configured: mix.configured)
        #expect(Audit.newFindings(in: without, memory: &memory).isEmpty)
        #expect(!memory.reported.contains("unmanaged:k-ci"))

        // It comes back: reported again, once.
        #expect(Audit.newFindings(in: first, memory: &memory).map(\.id) == ["unmanaged:k-ci"])
        #expect(Audit.newFindings(in: first, memory: &memory).isEmpty)
    }

    @Test func memorySurvivesARestart() throws {
        let report = Mix().run()
        var memory = AuditMemory()
        _ = Audit.newFindings(in: report, memory: &memory)
        let bytes = try StateDocument(audit: memory).encoded()
        var restored = try #require(try StateDocument.decode(bytes, version: StateDocument.schemaVersion).audit)
        #expect(restored == memory)
        #expect(Audit.newFindings(in: report, memory: &restored).isEmpty)
    }

    // MARK: - JSON

    @Test func theJSONOfAReportIsStable() throws {
        let key = F.listed("k1", "ci-bot", created: .days(2), lastUsed: .hours(3), expires: F.day(10))
        var withWorkspace = key
        withWorkspace.workspaceID = "ws-1"
        withWorkspace.workspaceName = "Default"
        let report = F.run([withWorkspace], [F.record("lost", current: F.listed("k0", "keyrotd/lost/g1/aaaaaa", created: .days(1)))], configured: [F.managed("lost")])
        let encoder = Timestamp.stableJSONEncoder()
        let text = String(decoding: try encoder.encode(report), as: UTF8.self)
        #expect(text == String(decoding: try encoder.encode(report), as: UTF8.self))
        #expect(text == """
            {
              "generated_at" : "2026-09-21T14:13:20.000Z",
              "keys" : [
                {
                  "created_at" : "2026-09-19T14:13:20.000Z",
                  "expires_on" : "2026-10-01T00:00:00.000Z",
                  "findings" : [
                    {
                      "key" : null,
                      "key_id" : "k1",
                      "kind" : "unmanaged",
                      "message" : "key k1 \\"ci-bot\\" is not managed by this keyrotd",
                      "remedy" : null
                    },
                    {
                      "key" : null,
                      "key_id" : "k1",
                      "kind" : "expiring",
                      "message" : "unmanaged key k1 \\"ci-bot\\" expires on 2026-10-01 (in 9d 9h)",
                      "remedy" : null
                    }
                  ],
                  "id" : "k1",
                  "last_used" : "2026-09-21T11:13:20.000Z",
                  "managed_as" : null,
                  "name" : "ci-bot",
                  "role" : null,
                  "workspace_id" : "ws-1",
                  "workspace_name" : "Default"
                }
              ],
              "other" : [
                {
                  "key" : "lost",
                  "key_id" : null,
                  "kind" : "missing",
                  "message" : "the current key k0 of lost is not at the provider: consumers may hold a key the provider no longer knows",
                  "remedy" : "keyrotd rotate lost"
                }
              ],
              "spend" : null,
              "spend_error" : null,
              "version" : 1
            }
            """)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { Timestamp.parse(try $0.singleValueContainer().decode(String.self)) ?? .distantPast }
        #expect(try decoder.decode(AuditReport.self, from: Data(text.utf8)) == report)
    }
}

/// Two keyrotd deployments sharing an organisation (and key names): the audit
/// tells this instance's keys from another's, and never offers to delete the other's.
@Suite struct SharedOrganisationAuditTests {
    @Test func anotherInstancesKeyIsForeignNeverAnOrphan() throws {
        let theirs = F.listed("k-st", "keyrotd/staging/dev-team/g4/abcdef", created: .days(200), lastUsed: .days(100), expires: F.day(-1))
        let report = F.run([theirs], [F.record("dev-team", current: nil)], configured: [F.managed("dev-team")])
        let finding = try #require(report.findings.first)
        #expect(report.findings.map(\.kind) == [.foreign], "not stale, over-age or expiring either: \(report.findings)")
        #expect(finding.remedy == nil)
        #expect(finding.key == nil, "not this keyrotd's dev-team")
        #expect(finding.message.contains("keyrotd instance staging"))
        #expect(finding.message.contains("this one is prod"))
        #expect(report.keys[0].managedAs == nil)
    }

    /// An instance named like a key, a key named like an instance: the segments decide.
    @Test func namesAreReadBySegmentsNotByPrefix() throws {
        let keys = [
            F.listed("k-a", "keyrotd/dev-team/prod/g1/aaaaaa", created: .hours(1)),  // instance dev-team's key "prod"
            F.listed("k-b", "keyrotd/prod/g1/bbbbbb", created: .hours(1)),  // old scheme, key "prod"
            F.listed("k-c", "keyrotd/prod/dev-team/g1/cccccc", created: .hours(1)),  // ours
        ]
        let report = F.run(keys, [], configured: [F.managed("dev-team"), F.managed("prod")])
        let kinds = Dictionary(uniqueKeysWithValues: report.keys.map { ($0.id, $0.findings.map(\.kind)) })
        #expect(kinds["k-a"] == [.foreign])
        #expect(kinds["k-b"] == [.legacy])
        #expect(kinds["k-c"] == [.orphan])
    }

    @Test func anUnrecordedOldSchemeKeyIsLegacyAndARecordedOneIsManaged() throws {
        let known = F.listed("k-old", "keyrotd/dev-team/g3/aaaaaa", created: .days(1), lastUsed: .hours(1))
        let unknown = F.listed("k-lost", "keyrotd/dev-team/g2/bbbbbb", created: .days(2))
        let report = F.run([known, unknown], [F.record("dev-team", current: known)], configured: [F.managed("dev-team")])
        let byID = Dictionary(uniqueKeysWithValues: report.keys.map { ($0.id, $0) })
        #expect(byID["k-old"]?.managedAs == "dev-team")
        #expect(byID["k-old"]?.role == .current)
        #expect(byID["k-old"]?.findings.isEmpty == true)
        let finding = try #require(byID["k-lost"]?.findings.first)
        #expect(byID["k-lost"]?.findings.count == 1)
        #expect(finding.kind == .legacy)
        #expect(finding.key == "dev-team")
        #expect(finding.message.contains("not upgraded yet"))
        #expect(finding.remedy == "keyrotd delete-orphan k-lost")
    }

    @Test func aKeyOfThisInstanceInAnotherWorkspaceIsNoOrphan() throws {
        let elsewhere = F.listed("k-w", "keyrotd/prod/dev-team/g2/abcdef", created: .hours(1), workspace: "ws-other")
        let report = F.run([elsewhere], [], configured: [F.managed("dev-team")])
        #expect(report.findings.map(\.kind) == [.unmanaged])
        #expect(report.findings.first?.remedy == nil)
        #expect(report.findings.first?.message.contains("workspace ws-other") == true)
    }

    /// The JSON contract only grows: the new kinds are plain strings.
    @Test func theNewKindsInJSON() throws {
        #expect(AuditFinding.Kind.foreign.rawValue == "foreign")
        #expect(AuditFinding.Kind.legacy.rawValue == "legacy")
    }
}

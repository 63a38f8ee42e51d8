import Foundation
import Glibc
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

private let day: TimeInterval = 86_400

/// `keyrotd audit` and the scheduled audit against a server seeded with every
/// kind of key a real organisation accumulates.
@Suite(.serialized) struct AuditEndToEndTests {
    struct Seeded {
        var ciBot = ""
        var oldBot = ""
        var soonBot = ""
        var foreign = ""
        var orphan = ""
    }

    private static func seed(_ server: MistralServer) async throws -> Seeded {
        func add(_ body: [String: Any]) async throws -> String {
            let key = try #require(try await server.control(.post, "/_control/keys", body) as? [String: Any])
            return try #require(key.string("key_id"))
        }
        let now = Date()
        var seeded = Seeded()
        seeded.ciBot = try await add(["name": "ci-bot", "last_used": Timestamp.format(now - day)])
        seeded.oldBot = try await add([
            "name": "old-bot", "created_at": Timestamp.format(now - 100 * day), "last_used": Timestamp.format(now - 60 * day),
        ])
        seeded.soonBot = try await add([
            "name": "soon-bot", "last_used": Timestamp.format(now), "expiration_date": String(Timestamp.format(now + 2 * day).prefix(10)),
        ])
        // Named like keyrotd's keys, but for a key this keyrotd never had (another keyrotd's?).
        seeded.foreign = try await add(["name": "keyrotd/other-team/g7/abcdef", "created_at": Timestamp.format(now - 60)])
        return seeded
    }

    /// The workspace `keySection` configures (seeded keys default to the server's default workspace).
    static let workspace = "7f1e0c3a-5d1b-4c52-9a3e-2b7d8e6f4a10"

    @Test func everyFindingIsReportedOnceAndTheJSONIsStable() async throws {
        var seeded = Seeded()
        var fleet = try await Fleet(rotateEvery: "30d", extra: "[audit]\nevery = \"1s\"\nstale_after = \"30d\"\n") { server in
            seeded = try await Self.seed(server)
        }
        defer { fleet.scratch.remove() }
        let current = try await fleet.firstDeploy(of: "alpha")
        // An orphan of alpha (a create whose record was lost), seeded once the first
        // rotation's end-of-rotation sweep (which would delete it) is over.
        #expect(try await waitFor(seconds: 20) { !fleet.events("rotation-completed").isEmpty })
        // Named for this keyrotd's instance (drawn at its first start: the current key's name says which).
        let currentName = try #require(try await fleet.server.keys().first { $0.string("key_id") == current }?.string("name"))
        let instance = try #require(ProviderKeyName(currentName)?.instance)
        let orphanKey = try #require(try await fleet.server.control(.post, "/_control/keys", ["name": "keyrotd/\(instance)/alpha/g9/abcdef", "workspace_uuid": Self.workspace]) as? [String: Any])
        seeded.orphan = try #require(orphanKey.string("key_id"))
        // Another keyrotd sharing the organisation, managing an alpha of its own.
        let theirs = try #require(try await fleet.server.control(.post, "/_control/keys", ["name": "keyrotd/other-deployment/alpha/g3/abcdef"]) as? [String: Any])
        let otherInstance = try #require(theirs.string("key_id"))

        let first = try fleet.cli(["audit", "--json"])
        #expect(first.status == 0, "\(first)")
        let report = try Timestamp.jsonDecoder().decode(AuditReport.self, from: Data(first.stdout.utf8))
        let found = report.findings.map { "\($0.kind.rawValue):\($0.keyID ?? "-")" }.sorted()
        let expected = [
            "unmanaged:\(seeded.ciBot)", "unmanaged:\(seeded.oldBot)", "stale:\(seeded.oldBot)", "over-age:\(seeded.oldBot)",
            "unmanaged:\(seeded.soonBot)", "expiring:\(seeded.soonBot)", "unmanaged:\(seeded.foreign)", "orphan:\(seeded.orphan)",
            "foreign:\(otherInstance)",
        ].sorted()
        #expect(found == expected, "\(first.stdout)")
        #expect(report.keys.count == 7)
        #expect(report.keys.first { $0.id == current }?.managedAs == "alpha")
        #expect(report.findings.first { $0.kind == .orphan }?.remedy == "keyrotd delete-orphan \(seeded.orphan)")
        #expect(report.spend != nil, "spend against limit is part of the audit")

        // Stable: the same keys give byte-identical JSON but for the timestamp.
        let second = try fleet.cli(["audit", "--json"])
        #expect(Self.withoutGeneratedAt(second.stdout) == Self.withoutGeneratedAt(first.stdout))
        let table = try fleet.cli(["audit"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("9 finding(s)") && table.stdout.contains("fix: keyrotd delete-orphan \(seeded.orphan)"), "\(table.stdout)")

        // The scheduled audit (every second) writes each finding once, across a restart.
        _ = try await waitFor(seconds: 20) { fleet.events("audit-finding").count >= expected.count }
        try await Task.sleep(for: .seconds(3))
        #expect(try await fleet.restart() == 0)
        try await Task.sleep(for: .seconds(4))
        let journal = fleet.events("audit-finding")
        #expect(journal.count == expected.count, "\(journal.joined(separator: "\n"))")
        for id in [seeded.ciBot, seeded.oldBot, seeded.soonBot, seeded.foreign, seeded.orphan, otherInstance] {
            #expect(journal.contains { $0.contains("key_id=\(id)") })
        }

        // delete-orphan removes the orphan, and only an orphan.
        let refused = try fleet.cli(["delete-orphan", current])
        #expect(refused.status == 75)
        #expect(refused.stderr.contains("is the current key of alpha: not an orphan"), "\(refused.stderr)")
        let unmanaged = try fleet.cli(["delete-orphan", seeded.ciBot])
        #expect(unmanaged.status == 64, "\(unmanaged)")
        let foreign = try fleet.cli(["delete-orphan", seeded.foreign])
        #expect(foreign.status == 75 && foreign.stderr.contains("never managed"), "\(foreign)")
        let another = try fleet.cli(["delete-orphan", otherInstance])
        #expect(another.status == 75 && another.stderr.contains("belongs to keyrotd instance other-deployment"), "\(another)")
        #expect(!(try await fleet.server.keys().first { $0.string("key_id") == otherInstance }?["deleted_at"] is String))
        let deleted = try fleet.cli(["delete-orphan", seeded.orphan])
        #expect(deleted.status == 0, "\(deleted)")
        #expect(try await fleet.server.keys().first { $0.string("key_id") == seeded.orphan }?["deleted_at"] is String)
        let after = try Timestamp.jsonDecoder().decode(AuditReport.self, from: Data(try fleet.cli(["audit", "--json"]).stdout.utf8))
        #expect(!after.findings.contains { $0.kind == .orphan })
        #expect(await fleet.stop() == 0)
    }

    private static func withoutGeneratedAt(_ text: String) -> String {
        text.split(separator: "\n").filter { !$0.contains("\"generated_at\"") }.joined(separator: "\n")
    }
}

/// Budget alerts against the server's spend limit and usage.
@Suite(.serialized) struct BudgetEndToEndTests {
    @Test func eachThresholdAlertsOncePerMonthAcrossRestarts() async throws {
        let scratch = try Scratch()
        let alertHook = try scratch.write("hooks/alert", """
            #!/bin/sh
            echo "$KEYROTD_EVENT $KEYROTD_BUDGET_SCOPE $KEYROTD_BUDGET_THRESHOLD $KEYROTD_BUDGET_PERCENT $KEYROTD_BUDGET_MONTH" >> "\(scratch.path)/alerts.log"

            """, mode: 0o755)
        var fleet = try await Fleet(rotateEvery: "30d", extra: "alert_hooks = [\"\(alertHook)\"]\n[budget]\nevery = \"1s\"\n") { server in
            _ = try await server.control(.post, "/_control/usage", ["usage_limit": 100, "usage": 10, "no_monthly_limit": false])
        }
        defer { fleet.scratch.remove() }
        defer { scratch.remove() }
        _ = try await fleet.firstDeploy(of: "alpha")
        func alerts() -> [String] {
            ((try? String(contentsOfFile: scratch.file("alerts.log"), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        func spend(_ usage: Double) async throws {
            _ = try await fleet.server.control(.post, "/_control/usage", ["usage": usage])
        }
        try await Task.sleep(for: .seconds(3))
        #expect(alerts().isEmpty)
        try await spend(55)
        #expect(try await waitFor(seconds: 10) { alerts().count == 1 })
        try await spend(60)
        try await spend(85)
        #expect(try await waitFor(seconds: 10) { alerts().count == 2 })
        try await spend(96)
        #expect(try await waitFor(seconds: 10) { alerts().count == 3 })
        try await Task.sleep(for: .seconds(3))
        let month = Budget.month(of: Date())
        #expect(alerts() == ["budget organization 50 55.0 \(month)", "budget organization 80 85.0 \(month)", "budget organization 95 96.0 \(month)"])
        let journal = fleet.events("budget-threshold")
        #expect(journal.count == 3)
        #expect(journal.map { String($0.prefix { $0 != " " }) } == ["notice", "warning", "error"], "priority rises with the threshold")

        // A workspace with its own limit: 8.5 of 10 spent crosses 50 and 80 there.
        let workspace = "3b0b7f6e-5d1b-4c52-9a3e-2b7d8e6f4a11"
        _ = try await fleet.server.control(.post, "/_control/workspaces", ["uuid": workspace, "name": "ml-team", "spend_limit": ["value": 10]])
        _ = try await fleet.server.control(.post, "/_control/usage", ["add_entries": [[
            "workspace_id": workspace, "model": "mistral-small-latest", "input_tokens": 8500, "input_price": 0.001,
            "output_tokens": 0, "output_price": 0,
        ]]])
        #expect(try await waitFor(seconds: 10) { alerts().count == 5 }, "\(alerts())")
        #expect(Array(alerts().suffix(2)) == ["budget workspace 50 85.0 \(month)", "budget workspace 80 85.0 \(month)"])

        // A restart raises none of them again.
        #expect(try await fleet.restart() == 0)
        try await Task.sleep(for: .seconds(4))
        #expect(alerts().count == 5)

        // A new month starts afresh: the state remembers an older month.
        fleet.daemon.signal(SIGTERM)
        #expect(await fleet.daemon.wait(timeout: .seconds(20)) == 0)
        let state = StateFile(path: fleet.scratch.file("state/state.json"))
        do {
            let lock = try state.lock()
            let (version, body) = try #require(try state.load(maxSupportedVersion: StateDocument.schemaVersion))
            var document = try StateDocument.decode(body, version: version)
            #expect(document.budget?.month == month)
            document.budget?.month = "2000-01"
            try state.save(body: try document.encoded(), version: StateDocument.schemaVersion)
            _ = consume lock
        }
        try fleet.start()
        #expect(try await waitFor(seconds: 15) { alerts().count == 10 }, "\(alerts())")
        #expect(Array(alerts().suffix(5)).map { $0.split(separator: " ").prefix(3).joined(separator: " ") } == [
            "budget organization 50", "budget organization 80", "budget organization 95",
            "budget workspace 50", "budget workspace 80",
        ])
        #expect(await fleet.stop() == 0)
    }
}

/// Usage-aware retirement with the server reporting the old key as used after the deploy.
@Suite(.serialized) struct RetirementEndToEndTests {
    @Test func anOldKeyStillInUseIsKeptUntilMaxOverlapWithWarnings() async throws {
        let fleet = try await Fleet(rotateEvery: "1h", overlap: "2s", extra: "max_overlap = \"8s\"\n")
        defer { fleet.scratch.remove() }
        let old = try await fleet.firstDeploy(of: "alpha")
        // A consumer keeps using the old key: the provider reports it used tomorrow (a later day than the deploy).
        _ = try await fleet.server.control(.patch, "/_control/keys/\(old)", ["last_used": Timestamp.format(Date() + day)])
        let rotate = try fleet.cli(["rotate", "alpha", "--wait", "--timeout", "60s"])
        #expect(rotate.status == 0, "\(rotate)")
        let deployed = try #require(deploys(in: fleet.scratch).last { $0.key == "alpha" })
        #expect(try await waitFor(seconds: 30) {
            try await fleet.server.keys().first { $0.string("key_id") == old }?["deleted_at"] is String
        }, "\(fleet.daemon.log())")
        let log = try await fleet.server.requestLog()
        let deletion = try #require(log.first { $0.string("method") == "DELETE" && $0.string("key_id") == old })
        let deletedAt = try #require(deletion.date("time"))
        #expect(deletedAt.timeIntervalSince(deployed.at) >= 8 - 0.05, "deleted \(deletedAt.timeIntervalSince(deployed.at))s after the deploy")
        let extended = fleet.events("retirement-extended")
        #expect(extended.count >= 2, "\(fleet.daemon.log())")
        #expect(extended.allSatisfy { $0.hasPrefix("warning") && $0.contains("key=alpha") && $0.contains(old) })
        #expect(fleet.events("retirement-forced").count == 1)
        #expect(await fleet.stop() == 0)
    }

    @Test func anOldKeyNotUsedAfterTheDeployGoesWhenTheOverlapEnds() async throws {
        let fleet = try await Fleet(rotateEvery: "1h", overlap: "2s", extra: "max_overlap = \"30s\"\n")
        defer { fleet.scratch.remove() }
        let old = try await fleet.firstDeploy(of: "alpha")
        let rotate = try fleet.cli(["rotate", "alpha", "--wait", "--timeout", "60s"])
        #expect(rotate.status == 0, "\(rotate)")
        let deployed = try #require(deploys(in: fleet.scratch).last { $0.key == "alpha" })
        #expect(try await waitFor(seconds: 20) {
            try await fleet.server.keys().first { $0.string("key_id") == old }?["deleted_at"] is String
        })
        let log = try await fleet.server.requestLog()
        let deletedAt = try #require(log.first { $0.string("method") == "DELETE" && $0.string("key_id") == old }?.date("time"))
        #expect(deletedAt.timeIntervalSince(deployed.at) >= 2 - 0.05)
        #expect(deletedAt.timeIntervalSince(deployed.at) < 20, "not held until max_overlap")
        #expect(fleet.events("retirement-extended").isEmpty)
        #expect(await fleet.stop() == 0)
    }
}

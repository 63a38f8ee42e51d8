import Foundation
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// `keyrotd status` and `keyrotd plan` against real state files.
@Suite struct StatusPlanTests {
    static let now = Date()

    /// Two configured keys (one idle, one mid-rotation and failing) and one the
    /// configuration no longer names.
    static func fixture(in scratch: Scratch) throws -> (config: String, state: String) {
        try scratch.write("hook", "#!/bin/sh\n", mode: 0o755)
        let state = scratch.file("state/state.json")
        let config = try scratch.write("keyrotd.toml", """
            [daemon]
            state_file = "\(state)"
            [providers.mistral]
            type = "mistral"
            base_url = "http://127.0.0.1:1"
            admin_key_credential = "k"
            [keys.alpha]
            provider = "mistral"
            workspace = "7f1e0c3a-5d1b-4c52-9a3e-2b7d8e6f4a10"
            user = "b52d9e10-3c4f-4e8a-8b1d-6a9f0c2e7d35"
            hooks = ["\(scratch.file("hook"))"]
            [keys.beta]
            provider = "mistral"
            workspace = "7f1e0c3a-5d1b-4c52-9a3e-2b7d8e6f4a10"
            user = "b52d9e10-3c4f-4e8a-8b1d-6a9f0c2e7d35"
            hooks = ["\(scratch.file("hook"))"]
            [keys.gamma]
            provider = "mistral"
            workspace = "7f1e0c3a-5d1b-4c52-9a3e-2b7d8e6f4a10"
            user = "b52d9e10-3c4f-4e8a-8b1d-6a9f0c2e7d35"
            hooks = ["\(scratch.file("hook"))"]
            """)
        return (config, state)
    }

    static func document() -> StateDocument {
        var alpha = KeyRecord(name: "alpha", seed: 1)
        alpha.current = ProviderKeyRef(id: "key-a3", name: "keyrotd/alpha/g3/aaaaaa", createdAt: now - .days(41) - .hours(3), generation: 3)
        alpha.generation = 3
        alpha.nextDue = now + .days(49)
        var beta = KeyRecord(name: "beta", seed: 2)
        beta.current = ProviderKeyRef(id: "key-b1", name: "keyrotd/beta/g1/bbbbbb", createdAt: now - .days(91), generation: 1)
        beta.generation = 1
        beta.phase = .creating
        beta.pending = PendingKey(generation: 2, name: "keyrotd/beta/g2/cccccc", createAttempted: true, orphans: [], id: nil, secret: nil, createdAt: nil, hooksDone: [])
        beta.attempts = 2
        beta.retryAt = now + .minutes(2)
        beta.lastError = StepFailure(kind: .transient, code: "http_503", message: "service unavailable")
        var old = KeyRecord(name: "retired-team", seed: 3)
        old.current = ProviderKeyRef(id: "key-r1", name: "keyrotd/retired-team/g1/dddddd", createdAt: now - .days(10), generation: 1)
        old.generation = 1
        old.nextDue = now + .days(80)
        return StateDocument(keys: ["alpha": alpha, "beta": beta, "retired-team": old])
    }

    static func writeState(_ path: String) throws {
        let file = StateFile(path: path)
        try file.prepareDirectory()
        try file.save(body: try document().encoded(), version: StateDocument.schemaVersion)
    }

    @Test func withNoStateFileStatusSaysSoPlainly() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, state) = try Self.fixture(in: scratch)
        let result = try keyrotd(["status", "--config", config])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("No state yet at \(state): keyrotd has not run"))
        #expect(result.stdout.contains("alpha"))
        let plan = try keyrotd(["plan", "--config", config])
        #expect(plan.status == 0)
        #expect(plan.stdout.contains("at daemon start  alpha  create the first key"))
        #expect(!FileManager.default.fileExists(atPath: state), "read-only commands create nothing")
    }

    @Test func statusTable() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, state) = try Self.fixture(in: scratch)
        try Self.writeState(state)
        let result = try keyrotd(["status", "--config", config])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(lines[0] == "KEY PHASE KEY ID GEN AGE NEXT ROTATION TRIES LAST ERROR")
        #expect(lines[1].hasPrefix("alpha idle key-a3 3 41d 3h in 48d 23h 0 -") || lines[1].hasPrefix("alpha idle key-a3 3 41d 3h in 49d 0 -"), "\(lines[1])")
        #expect(lines[2] == "beta creating key-b1 1 91d - 2 http_503: service unavailable")
        #expect(lines[3] == "gamma new - - - - 0 -")
        #expect(lines[4].hasPrefix("retired-team (not configured) idle key-r1 1 10d"))
    }

    @Test func statusJSONIsStable() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, state) = try Self.fixture(in: scratch)
        try Self.writeState(state)
        let result = try keyrotd(["status", "--json", "--config", config])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["version", "state_file", "state_exists", "instance", "keys"])
        #expect(object["instance"] is NSNull, "no instance configured or drawn yet")
        #expect(object["version"] as? Int == 1)
        let keys = try #require(object["keys"] as? [[String: Any]])
        #expect(keys.map { $0["name"] as? String } == ["alpha", "beta", "gamma", "retired-team"])
        let fields: Set<String> = [
            "name", "managed", "phase", "key_id", "generation", "created_at", "age_seconds", "next_rotation",
            "attempts", "retry_at", "last_error", "pending_key_id", "retiring_key_id", "retire_at", "revoking",
        ]
        for key in keys { #expect(Set(key.keys) == fields, "every field present, nulls included") }
        #expect(keys[1]["phase"] as? String == "creating")
        #expect((keys[1]["last_error"] as? [String: Any])?["code"] as? String == "http_503")
        #expect(keys[2]["phase"] as? String == "new")
        #expect(keys[3]["managed"] as? Bool == false)
        #expect(!result.stdout.contains("\\/"), "slashes are not escaped")
    }

    @Test func planListsUpcomingWorkSoonestFirst() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, state) = try Self.fixture(in: scratch)
        try Self.writeState(state)
        let result = try keyrotd(["plan", "--json", "--config", config])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let rotations = try #require(object["rotations"] as? [[String: Any]])
        #expect(rotations.map { $0["key"] as? String } == ["gamma", "beta", "alpha"])
        #expect(rotations[0]["at"] is NSNull)
        #expect(rotations[1]["what"] as? String == "resume creating (attempt 3)")
        #expect(rotations[2]["what"] as? String == "rotate generation 3 -> 4")
        let table = try keyrotd(["plan", "--config", config])
        #expect(table.stdout.split(separator: "\n").count == 4)
    }

    /// Each damaged file is refused with exit 78 and left exactly as it was.
    @Test(arguments: ["flipped-byte", "truncated", "empty", "future-version", "group-readable", "not-json"])
    func aDamagedStateFileIsRefusedAndLeftUntouched(damage: String) throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, state) = try Self.fixture(in: scratch)
        try Self.writeState(state)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: state))
        switch damage {
        case "flipped-byte": bytes[bytes.count / 2] ^= 0x20
        case "truncated": bytes = bytes.prefix(bytes.count * 2 / 3)
        case "empty": bytes = Data()
        case "future-version":
            bytes = Data(String(decoding: bytes, as: UTF8.self)
                .replacingOccurrences(of: "\"version\":1,", with: "\"version\":99,").utf8)
        case "not-json": bytes = Data("hello\n".utf8)
        default: break
        }
        try bytes.write(to: URL(fileURLWithPath: state))
        chmod(state, damage == "group-readable" ? 0o640 : 0o600)
        let before = try FileManager.default.attributesOfItem(atPath: state)
        for command in ["status", "plan"] {
            let result = try keyrotd([command, "--config", config])
            #expect(result.status == 78, "\(command) \(damage): \(result.stderr)")
            #expect(result.stderr.contains("state file \(state)"), "\(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: state)) == bytes)
        let after = try FileManager.default.attributesOfItem(atPath: state)
        #expect(after[.modificationDate] as? Date == before[.modificationDate] as? Date)
        #expect(after[.posixPermissions] as? Int == before[.posixPermissions] as? Int)
    }
}

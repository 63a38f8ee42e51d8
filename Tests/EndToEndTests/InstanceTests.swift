import Foundation
import Glibc
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// The instance over a deployment's life: an upgrade from a state file and keys
/// of the naming scheme before instances, restarts, and a configured instance
/// replacing the drawn one.
@Suite(.serialized) struct InstanceEndToEndTests {
    static let workspace = "7f1e0c3a-5d1b-4c52-9a3e-2b7d8e6f4a10"

    @Test func anUpgradeKeepsItsKeysAndTheInstanceStaysUntilTheConfigurationNamesAnother() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try MistralServer(in: scratch)
        defer { server.stop() }
        func seed(_ name: String) async throws -> [String: Any] {
            try #require(try await server.control(.post, "/_control/keys", ["name": name, "workspace_uuid": Self.workspace]) as? [String: Any])
        }
        // Before the upgrade: alpha's current key by the old scheme, known to the state file
        // (which has no instance), which the consumer holds.
        let current = try await seed("keyrotd/alpha/g1/abcdef")
        let currentID = try #require(current.string("key_id"))
        _ = try scratch.write("consumer-alpha", try #require(current.string("key")) + "\n")
        // Another deployment's keys: one not upgraded yet, one upgraded.
        let notUpgraded = try #require(try await seed("keyrotd/alpha/g4/ffffff").string("key_id"))
        let upgraded = try #require(try await seed("keyrotd/staging/alpha/g2/eeeeee").string("key_id"))

        var record = KeyRecord(name: "alpha", seed: 5)
        record.current = ProviderKeyRef(
            id: currentID, name: "keyrotd/alpha/g1/abcdef", createdAt: Date() - .minutes(5), generation: 1,
            expiresAt: Date() + .days(30))
        record.generation = 1
        record.nextDue = Date() + .hours(1)
        record.provider = "mistral"
        let stateFile = StateFile(path: scratch.file("state/state.json"))
        try stateFile.prepareDirectory()
        try stateFile.save(body: try StateDocument(keys: ["alpha": record]).encoded(), version: StateDocument.schemaVersion)

        let hook = try consumerHook(in: scratch)
        let config = try daemonConfig(in: scratch, server: server, keys: ["alpha"], hook: hook, rotateEvery: "1h", overlap: "1s")
        var daemon = try DaemonProcess(config: config, logPath: scratch.file("keyrotd-1.log"))
        #expect(try await waitFor(seconds: 20) { daemon.log().contains("keyrotd running") })
        let drawn = try #require(Self.instance(in: daemon.log()), "\(daemon.log())")
        #expect(drawn.count == 8 && daemon.log().contains("event=instance-drawn"), "\(daemon.log())")
        try await Task.sleep(for: .seconds(2))
        #expect(deploys(in: scratch).isEmpty, "an upgrade alone rotates nothing")

        let rotated = try keyrotd(["rotate", "alpha", "--wait", "--timeout", "60s", "--socket", scratch.file("control.sock")])
        #expect(rotated.status == 0, "\(rotated)\n\(daemon.log())")
        #expect(try await waitFor(seconds: 20) { daemon.log().contains("event=rotation-completed") })
        var keys = try await server.keys()
        func deleted(_ id: String) -> Bool { keys.first { $0.string("key_id") == id }?["deleted_at"] is String }
        #expect(deleted(currentID), "the old-scheme key the record knew is retired")
        #expect(!deleted(notUpgraded) && !deleted(upgraded), "the sweep deleted another deployment's key")
        let second = try #require(deploys(in: scratch).last?.id)
        #expect(ProviderKeyName(keys.first { $0.string("key_id") == second }?.string("name") ?? "")?.instance == drawn)

        // A restart keeps the drawn instance.
        daemon.signal(SIGTERM)
        #expect(await daemon.wait(timeout: .seconds(15)) == 0)
        daemon = try DaemonProcess(config: config, logPath: scratch.file("keyrotd-2.log"))
        #expect(try await waitFor(seconds: 20) { daemon.log().contains("keyrotd running") })
        #expect(Self.instance(in: daemon.log()) == drawn)
        #expect(!daemon.log().contains("event=instance-drawn"))
        let status = try keyrotd(["status", "--json", "--config", config])
        let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        #expect(object?["instance"] as? String == drawn, "status --json names the drawn instance: \(status.stdout)")

        // A configured instance replaces it: keys the record knows stay managed.
        daemon.signal(SIGTERM)
        #expect(await daemon.wait(timeout: .seconds(15)) == 0)
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: "[daemon]\n", with: "[daemon]\ninstance = \"renamed\"\n")
            .write(toFile: config, atomically: true, encoding: .utf8)
        daemon = try DaemonProcess(config: config, logPath: scratch.file("keyrotd-3.log"))
        #expect(try await waitFor(seconds: 20) { daemon.log().contains("keyrotd running") })
        #expect(Self.instance(in: daemon.log()) == "renamed")
        #expect(daemon.log().contains("event=instance-changed") && daemon.log().contains("replaces the state file's instance \(drawn)"))
        let again = try keyrotd(["rotate", "alpha", "--wait", "--timeout", "60s", "--socket", scratch.file("control.sock")])
        #expect(again.status == 0, "\(again)\n\(daemon.log())")
        #expect(try await waitFor(seconds: 20) { daemon.log().contains("event=rotation-completed") })
        keys = try await server.keys()
        #expect(deleted(second), "the key named for the former instance is retired: the record knows it")
        let third = try #require(deploys(in: scratch).last?.id)
        #expect(ProviderKeyName(keys.first { $0.string("key_id") == third }?.string("name") ?? "")?.instance == "renamed")
        #expect(!deleted(notUpgraded) && !deleted(upgraded))
        daemon.signal(SIGTERM)
        #expect(await daemon.wait(timeout: .seconds(15)) == 0)
        try await checkSettledInvariants(scratch: scratch, server: server, config: config, keys: ["alpha"], overlap: 1, instance: "renamed")
    }

    /// "keyrotd running: instance X, …" from a daemon's log.
    static func instance(in log: String) -> String? {
        guard let range = log.range(of: "keyrotd running: instance ") else { return nil }
        return log[range.upperBound...].split(separator: ",").first.map(String.init)
    }
}

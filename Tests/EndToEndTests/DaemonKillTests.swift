import Foundation
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// `keyrotd run` killed with SIGKILL at random moments across many rotations,
/// restarted each time, then left to settle.
@Suite(.serialized) struct DaemonKillTests {
    static let keys = ["k1", "k2", "k3"]
    static let kills = 60
    static let overlap: TimeInterval = 1

    @Test func sigkillAtRandomMomentsLosesNothing() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try MistralServer(in: scratch)
        defer { server.stop() }
        let hook = try consumerHook(in: scratch)
        var config = try daemonConfig(in: scratch, server: server, keys: Self.keys, hook: hook, rotateEvery: "3s", overlap: "1s")
        var killedMidRotation = 0

        for round in 0..<Self.kills {
            let daemon = try DaemonProcess(config: config, logPath: scratch.file("keyrotd.log"))
            try await Task.sleep(for: .milliseconds(Int.random(in: 50...1200)))
            daemon.signal(SIGKILL)
            _ = await daemon.wait(timeout: .seconds(10))
            // Throughout, every consumer holds a key the server accepts.
            for key in Self.keys {
                guard let text = try? String(contentsOfFile: scratch.file("consumer-\(key)"), encoding: .utf8) else { continue }
                let accepted = await server.accepts(Secret(text.trimmingCharacters(in: .newlines)))
                #expect(accepted, "round \(round): \(key)'s consumer holds a key the server refuses")
            }
            let status = try keyrotd(["status", "--json", "--config", config])
            #expect(status.status == 0, "round \(round): the state file does not load: \(status.stderr)")
            let phases = ((try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["keys"] as? [[String: Any]] ?? [])
                .compactMap { $0["phase"] as? String }
            if phases.contains(where: { $0 != "idle" && $0 != "new" }) { killedMidRotation += 1 }
        }
        #expect(killedMidRotation > Self.kills / 4, "only \(killedMidRotation) kills landed mid-rotation")

        // Settle: no new rotations (a long interval), let the ones in flight finish.
        config = try daemonConfig(in: scratch, server: server, keys: Self.keys, hook: hook, rotateEvery: "1h", overlap: "1s")
        let daemon = try DaemonProcess(config: config, logPath: scratch.file("keyrotd.log"))
        let settled = try await waitFor(seconds: 30) {
            let status = try keyrotd(["status", "--json", "--config", config])
            let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
            let keys = object?["keys"] as? [[String: Any]] ?? []
            return keys.count == Self.keys.count && keys.allSatisfy { $0["phase"] as? String == "idle" && $0["retiring_key_id"] is NSNull }
        }
        daemon.signal(SIGTERM)
        let exit = await daemon.wait(timeout: .seconds(15))
        #expect(exit == 0, "exit \(String(describing: exit)):\n\(daemon.log().suffix(2000))")
        #expect(settled, "keyrotd did not settle:\n\(daemon.log().suffix(3000))")

        let keys = try await server.keys()
        let log = try await server.requestLog()
        let deployed = deploys(in: scratch)
        var rotations = 0
        for name in Self.keys {
            let mine = keys.filter { $0.string("name")?.hasPrefix("keyrotd/\(name)/") == true }
            let live = mine.filter { !($0["deleted_at"] is String) }
            // Exactly one keyrotd key per managed key: no orphans, no duplicates.
            #expect(live.count == 1, "\(name): \(live.count) live keys")
            let consumer = try String(contentsOfFile: scratch.file("consumer-\(name)"), encoding: .utf8).trimmingCharacters(in: .newlines)
            #expect(await server.accepts(Secret(consumer)))
            // No old key was deleted before its successor was deployed and the overlap passed.
            let order = deployed.filter { $0.key == name }.reduce(into: [(id: String, at: Date)]()) { order, entry in
                if !order.contains(where: { $0.id == entry.id }) { order.append((entry.id, entry.at)) }
            }
            rotations += max(0, order.count - 1)
            for (previous, next) in zip(order, order.dropFirst()) {
                let deletion = try #require(log.first { $0.string("method") == "DELETE" && $0.string("key_id") == previous.id && ($0["status"] as? Int) == 200 },
                                            "\(name): deployed key \(previous.id) was never deleted")
                let deletedAt = try #require(deletion.date("time"))
                #expect(deletedAt.timeIntervalSince(next.at) >= Self.overlap - 0.01,
                        "\(name): \(previous.id) deleted \(deletedAt.timeIntervalSince(next.at))s after its successor's deploy")
            }
            // Keys created but never deployed (their secret lost to a kill) are all gone.
            for key in mine where !order.contains(where: { $0.id == key.string("key_id") }) {
                #expect(key["deleted_at"] is String, "\(name): orphan \(key.string("key_id") ?? "?") survived")
            }
        }
        #expect(rotations >= 2 * Self.keys.count, "too few rotations happened across the kills: \(rotations)")
        print("daemon kill test: \(Self.kills) SIGKILLs, \(killedMidRotation) mid-rotation, \(rotations) rotations, \(keys.count) keys created")
    }
}

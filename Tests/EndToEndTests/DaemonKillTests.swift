import Foundation
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// `keyrotd run` killed with SIGKILL at random moments across many rotations,
/// restarted each time, then left to settle.
@Suite(.serialized) struct DaemonKillTests {
    static let keys = ["k1", "k2", "k3"]
    /// 200 under `KEYROTD_LONG_TESTS=1` (`scripts/test --long`, which `.ci/run` uses).
    static let kills = longTests ? 200 : 60
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
        let settled = try await waitFor(seconds: 30) { try allIdle(config: config, keys: Self.keys.count) }
        daemon.signal(SIGTERM)
        let exit = await daemon.wait(timeout: .seconds(15))
        #expect(exit == 0, "exit \(String(describing: exit)):\n\(daemon.log().suffix(2000))")
        #expect(settled, "keyrotd did not settle:\n\(daemon.log().suffix(3000))")

        let (rotations, created) = try await checkSettledInvariants(scratch: scratch, server: server, config: config, keys: Self.keys, overlap: Self.overlap)
        #expect(rotations >= (longTests ? 20 : 2 * Self.keys.count), "too few rotations happened across the kills: \(rotations)")
        print("daemon kill test: \(Self.kills) SIGKILLs, \(killedMidRotation) mid-rotation, \(rotations) rotations, \(created) keys created")
    }
}

import Foundation
import KeyRotation
import TestSupport
import Testing

/// The fault suites settle a daemon by reloading it with `rotate_every = "1h"`
/// and waiting until `keyrotd status` shows every key idle, then stop it. A key
/// whose new key was already deployed when the reload landed (overlapping or
/// retiring) must take the new interval too: if it kept the due time computed
/// at its deploy with the old interval, it would start one more rotation a
/// second or two after looking idle, and a SIGTERM then leaves that rotation's
/// key created but never deployed, live at the provider.
@Suite struct SettleRaceTests {
    @Test func aReloadDuringTheOverlapMovesTheNextRotation() async throws {
        // A long overlap, so the reload reliably lands inside it even on a busy machine.
        let fleet = try await Fleet(keys: ["alpha"], rotateEvery: "12s", overlap: "8s")
        defer { fleet.scratch.remove() }
        defer { fleet.server.stop() }
        // The second deploy: alpha has an old key to retire, 8 s of overlap.
        let second = try await waitFor(seconds: 45) { deploys(in: fleet.scratch).count >= 2 }
        try #require(second, "no second deploy:\n\(fleet.daemon.log())")
        _ = try daemonConfig(
            in: fleet.scratch, server: fleet.server, keys: ["alpha"], hook: fleet.scratch.file("hooks/consumer"),
            rotateEvery: "1h", overlap: "8s")
        fleet.daemon.signal(SIGHUP)
        #expect(try await waitFor(seconds: 10) { !fleet.events("config-reloaded").isEmpty })
        // Otherwise the test proves nothing: a reload after the overlap found the key
        // idle, which was rescheduled before the fix too.
        try #require(fleet.events("rotation-completed").count < 2, "the reload landed after the overlap:\n\(fleet.daemon.log())")
        // Idle by phase alone (what the settle steps used to check): the machine,
        // not the check, must keep the next rotation an hour away.
        #expect(try await waitFor(seconds: 30) { try allIdle(config: fleet.config, keys: 1, quiet: nil) })
        let started = fleet.events("rotation-started").count
        // Looks settled. Watch for 14 s (longer than the old interval) whether a
        // rotation starts anyway; stop the daemon the moment one does.
        var restarted = false
        let end = Date() + 14
        while Date() < end {
            if fleet.events("rotation-started").count > started {
                restarted = true
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        fleet.daemon.signal(SIGTERM)
        let status = await fleet.daemon.wait(timeout: .seconds(20))
        #expect(status == 0)
        let live = try await fleet.live("alpha")
        let deployed = Set(deploys(in: fleet.scratch).map(\.id))
        let strays = live.compactMap { $0.string("key_id") }.filter { !deployed.contains($0) }
        #expect(!restarted, "a rotation started after the daemon was reloaded to 1h and looked idle ; stopped then, it leaves \(strays.count) never-deployed key(s) live: \(strays)\n\(fleet.daemon.log().suffix(3000))")
        #expect(live.count == 1 && strays.isEmpty, "\(live.count) live keys, never deployed: \(strays)")
    }
}

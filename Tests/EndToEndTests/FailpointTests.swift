import Foundation
import KeyRotation
import TestSupport
import Testing

/// A crash at every boundary of a rotation: `keyrotd run` exits at a named
/// failpoint (`KEYROTD_FAILPOINT=NAME@N`, compiled into test builds only), is
/// started again without it, and must settle with every promise kept.
@Suite struct FailpointTests {
    /// Every failpoint `Failpoint.Point` defines (a misspelt name makes the
    /// daemon exit 64, which fails the run).
    static let points = [
        "persist.before", "persist.after", "create.before", "create.after", "list.before", "list.after",
        "verify.before", "verify.after", "delete.before", "delete.after", "hook.deploy.before", "hook.deploy.after",
        "hook.retire.before", "hook.retire.after",
    ]
    /// Which hit of each point crashes: the first (first keys), and later ones
    /// that fall inside full rotations (more of them under `KEYROTD_LONG_TESTS=1`).
    static let hits = longTests ? [1, 2, 3, 5, 8] : [1, 3]
    static let keys = ["alpha", "beta"]

    @Test func aCrashAtEveryFailpointLosesNothing() async throws {
        let cases = Self.points.flatMap { point in Self.hits.map { (point, $0) } }
        let failures = try await runConcurrently(cases) { point, hit in try await Self.crashAndRecover(at: point, hit: hit) }
        #expect(failures.isEmpty, "\(failures.count) of \(cases.count) runs failed:\n\(failures.joined(separator: "\n"))")
        print("failpoint suite: \(cases.count) crashes (\(Self.points.count) points × hits \(Self.hits)), \(failures.count) failed")
    }

    /// One run; returns a description of what went wrong, or nil. (Checks after
    /// the restart are recorded as issues directly.)
    static func crashAndRecover(at point: String, hit: Int) async throws -> String? {
        let name = "\(point)@\(hit)"
        var fleet = try await Fleet(keys: keys, rotateEvery: "4s", overlap: "1s", environment: ["KEYROTD_FAILPOINT": name])
        defer { fleet.scratch.remove() }
        defer { fleet.server.stop() }
        let crashed = await fleet.daemon.wait(timeout: .seconds(60))
        guard crashed == 99, fleet.daemon.log().contains("failpoint \(name): exiting now") else {
            fleet.daemon.signal(SIGKILL)
            return "\(name): expected exit 99 at the failpoint, got \(String(describing: crashed)):\n\(fleet.daemon.log().suffix(1500))"
        }
        let status = try keyrotd(["status", "--json", "--config", fleet.config])
        guard status.status == 0 else { return "\(name): the state file does not load after the crash: \(status.stderr)" }

        // Restarted without the failpoint, every key completes a rotation; then a clean stop.
        try fleet.start()
        let recovered = try await waitFor(seconds: 60) {
            let log = fleet.daemon.log()
            return keys.allSatisfy { key in
                log.split(separator: "\n").contains { $0.contains("event=rotation-completed") && $0.contains("key=\(key) ") && !$0.contains("generation=1 ") }
            }
        }
        guard recovered else {
            fleet.daemon.signal(SIGKILL)
            return "\(name): no rotation completed after the restart:\n\(fleet.daemon.log().suffix(1500))"
        }
        // Settle: no new rotations (SIGHUP to a long interval), the ones in flight finish.
        _ = try daemonConfig(
            in: fleet.scratch, server: fleet.server, keys: keys, hook: fleet.scratch.file("hooks/consumer"), rotateEvery: "1h", overlap: "1s")
        fleet.daemon.signal(SIGHUP)
        let settled = try await waitFor(seconds: 30) { try allIdle(config: fleet.config, keys: keys.count) }
        fleet.daemon.signal(SIGTERM)
        let stopped = await fleet.daemon.wait(timeout: .seconds(20))
        guard settled else { return "\(name): did not settle:\n\(fleet.daemon.log().suffix(1500))" }
        guard stopped == 0 else { return "\(name): the restarted daemon did not stop cleanly (\(String(describing: stopped)))" }
        try await checkSettledInvariants(scratch: fleet.scratch, server: fleet.server, config: fleet.config, keys: keys, overlap: 1)
        return nil
    }
}

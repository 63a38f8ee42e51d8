import Foundation
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// keyrotd as systemd sees it, through a NOTIFY_SOCKET the test listens on.
@Suite(.serialized) struct DaemonSystemdTests {
    @Test func notifySequenceWatchdogReloadAndStop() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try MistralServer(in: scratch)
        defer { server.stop() }
        let notify = try NotifySocket(path: scratch.file("notify.sock"))
        let hook = try consumerHook(in: scratch)
        let config = try daemonConfig(in: scratch, server: server, keys: ["alpha", "beta"], hook: hook, rotateEvery: "1h", overlap: "1s")
        let good = try String(contentsOfFile: config, encoding: .utf8)
        let daemon = try DaemonProcess(
            config: config, logPath: scratch.file("keyrotd.log"),
            environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000"])

        // READY=1 with a one-line STATUS once config and state are loaded.
        let ready = try #require(notify.receive(until: { $0.hasPrefix("READY=1") }, timeout: .seconds(20)), "\(daemon.log())")
        let first = try #require(ready.last)
        #expect(first.hasPrefix("READY=1\nSTATUS=2 keys"), "\(first)")
        #expect(!first.dropFirst("READY=1\n".count).contains("\n"))

        // Watchdog pings at half of WATCHDOG_USEC (2 s): about 1 s apart, from the loop.
        let clock = ContinuousClock()
        let start = clock.now
        var pings = 0
        var statuses: [String] = []
        while clock.now - start < .seconds(6) {
            guard let message = notify.receive(timeout: .seconds(2)) else { break }
            if message == "WATCHDOG=1" { pings += 1 } else { statuses.append(message) }
        }
        #expect((4...8).contains(pings), "\(pings) pings in 6 s")
        #expect(statuses.allSatisfy { $0.hasPrefix("STATUS=") }, "\(statuses)")

        // SIGHUP with a good configuration: RELOADING=1 (with MONOTONIC_USEC), then READY=1.
        try scratch.write("keyrotd.toml", good.replacingOccurrences(of: "rotate_every = \"1h\"", with: "rotate_every = \"2h\""))
        daemon.signal(SIGHUP)
        let reload = try #require(notify.receive(until: { $0.hasPrefix("READY=1") }, timeout: .seconds(10)))
        let reloading = try #require(reload.first { $0.hasPrefix("RELOADING=1") })
        #expect(reloading.contains("\nMONOTONIC_USEC="))
        #expect(reload.last?.contains("config rejected") == false)

        // SIGHUP with a bad configuration: still RELOADING/READY, the status says so,
        // and the daemon keeps running on the old configuration.
        try scratch.write("keyrotd.toml", good.replacingOccurrences(of: "overlap = \"1s\"", with: "overlap = \"soon\""))
        daemon.signal(SIGHUP)
        let rejected = try #require(notify.receive(until: { $0.hasPrefix("READY=1") }, timeout: .seconds(10)))
        #expect(rejected.contains { $0.hasPrefix("RELOADING=1") })
        #expect(rejected.last?.contains("STATUS=config rejected") == true, "\(rejected)")
        #expect(daemon.log().contains("keyrotd.toml:8: defaults.overlap: bad duration"), "\(daemon.log())")
        #expect(daemon.child.poll() == nil, "keyrotd exited on a bad reload")

        // SIGTERM: STOPPING=1, exit 0.
        daemon.signal(SIGTERM)
        let stopping = notify.receive(until: { $0.hasPrefix("STOPPING=1") }, timeout: .seconds(10))
        #expect(stopping != nil)
        #expect(await daemon.wait(timeout: .seconds(10)) == 0)
    }

    /// Removing a key by SIGHUP while its hook runs, then adding it back: the hook
    /// never runs twice at once and nothing is left behind at the provider.
    @Test func removeAndReAddAKeyWhileItsHookRuns() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try MistralServer(in: scratch)
        defer { server.stop() }
        let hook = try scratch.write("hooks/slow", """
            #!/bin/sh
            [ "$KEYROTD_EVENT" = deploy ] || exit 0
            echo "start $$ $(date +%s%3N)" >> \(scratch.file("runs.log"))
            sleep 3
            echo "end $$ $(date +%s%3N)" >> \(scratch.file("runs.log"))

            """, mode: 0o755)
        let config = try daemonConfig(in: scratch, server: server, keys: ["alpha", "beta"], hook: hook, rotateEvery: "1h", overlap: "1s")
        let both = try String(contentsOfFile: config, encoding: .utf8)
        let daemon = try DaemonProcess(config: config, logPath: scratch.file("keyrotd.log"))
        #expect(try await waitFor(seconds: 20) { (try? String(contentsOfFile: scratch.file("runs.log"), encoding: .utf8))?.contains("start") == true })
        let alphaSection = both[both.range(of: "[keys.alpha]")!.lowerBound..<both.range(of: "[keys.beta]")!.lowerBound]
        try scratch.write("keyrotd.toml", both.replacingOccurrences(of: String(alphaSection), with: ""))
        daemon.signal(SIGHUP)
        try await Task.sleep(for: .milliseconds(300))
        try scratch.write("keyrotd.toml", both)
        daemon.signal(SIGHUP)
        let settled = try await waitFor(seconds: 30) {
            let status = try keyrotd(["status", "--json", "--config", config])
            return status.stdout.components(separatedBy: "\"phase\" : \"idle\"").count == 3
        }
        daemon.signal(SIGTERM)
        #expect(await daemon.wait(timeout: .seconds(15)) == 0)
        #expect(settled, "\(daemon.log())")
        // Runs per key never overlap: every start is followed by its end before the next start of the same key.
        let runs = try String(contentsOfFile: scratch.file("runs.log"), encoding: .utf8).split(separator: "\n")
        var open = 0
        var maxOpen = 0
        for line in runs { open += line.hasPrefix("start") ? 1 : -1; maxOpen = max(maxOpen, open) }
        #expect(maxOpen <= 2, "more hooks at once than keys: \(runs)")
        let keys = try await server.keys()
        for name in ["alpha", "beta"] {
            let live = keys.filter { isKeyrotdKey($0, of: name) && !($0["deleted_at"] is String) }
            #expect(live.count == 1, "\(name): \(live.count) live keys")
        }
    }
}

import Foundation
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// `keyrotd run` against the local Mistral-compatible server, over real libcurl,
/// with real hook processes and a seconds-long schedule.
@Suite(.serialized) struct DaemonTests {
    static let keys = ["alpha", "beta", "gamma"]
    static let overlap: TimeInterval = 2

    /// Two full rotations of three keys; the request log proves create -> verify ->
    /// deploy -> overlap -> delete for every key.
    @Test func twoFullRotationsOfThreeKeys() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try MistralServer(in: scratch)
        defer { server.stop() }
        let hook = try consumerHook(in: scratch)
        let config = try daemonConfig(in: scratch, server: server, keys: Self.keys, hook: hook, rotateEvery: "6s", overlap: "2s")
        let daemon = try DaemonProcess(config: config, logPath: scratch.file("keyrotd.log"))

        let settled = try await waitFor(seconds: 60) {
            let keys = try await server.keys()
            return Self.keys.allSatisfy { name in
                let mine = keys.filter { isKeyrotdKey($0, of: name) }
                return mine.count >= 3 && mine.filter { $0["deleted_at"] is String }.count >= 2
            }
        }
        // Settle: no new rotations, the ones in flight finish (their old keys deleted).
        _ = try daemonConfig(in: scratch, server: server, keys: Self.keys, hook: hook, rotateEvery: "1h", overlap: "2s")
        daemon.signal(SIGHUP)
        #expect(try await waitFor(seconds: 30) { try allIdle(config: config, keys: Self.keys.count) })
        daemon.signal(SIGTERM)
        let status = await daemon.wait(timeout: .seconds(20))
        #expect(settled, "rotations did not complete:\n\(daemon.log())")
        #expect(status == 0, "keyrotd did not stop cleanly:\n\(daemon.log())")

        let keys = try await server.keys()
        let log = try await server.requestLog()
        let deployed = deploys(in: scratch)
        for name in Self.keys {
            let mine = keys.filter { isKeyrotdKey($0, of: name) }
                .sorted { ($0.date("created_at") ?? .distantPast) < ($1.date("created_at") ?? .distantPast) }
            #expect(mine.count >= 3, "\(name): \(mine.count) keys")  // more under load: a key may run ahead of the others
            for (index, key) in mine.enumerated() {
                let id = try #require(key.string("key_id"))
                #expect(ProviderKeyName(key.string("name") ?? "")?.generation == index + 1)
                let created = try #require(log.firstIndex { $0.string("method") == "POST" && $0.string("key_id") == id && ($0["status"] as? Int) == 200 })
                let verified = try #require(log.firstIndex { $0.string("path") == "/v1/models" && $0.string("auth") == "key:\(id)" && ($0["status"] as? Int) == 200 })
                #expect(created < verified, "\(name) g\(index + 1): verified before it was created")
                guard let deploy = deployed.first(where: { $0.id == id }) else {
                    #expect(index == mine.count - 1, "\(name) g\(index + 1) was never deployed")
                    continue
                }
                #expect(try #require(log[verified].date("time")) <= deploy.at, "\(name) g\(index + 1): deployed before verified")
                guard index > 0 else { continue }
                // The predecessor is deleted only after this key was deployed and the overlap passed.
                let old = try #require(mine[index - 1].string("key_id"))
                let deletion = try #require(log.first { $0.string("method") == "DELETE" && $0.string("key_id") == old })
                let deletedAt = try #require(deletion.date("time"))
                #expect(deletedAt.timeIntervalSince(deploy.at) >= Self.overlap - 0.01,
                        "\(name): g\(index) deleted \(deletedAt.timeIntervalSince(deploy.at))s after g\(index + 1) was deployed")
            }
            // The consumer holds the current key, and the server accepts it.
            let secret = try String(contentsOfFile: scratch.file("consumer-\(name)"), encoding: .utf8).trimmingCharacters(in: .newlines)
            #expect(await server.accepts(Secret(secret)))
        }
        // The hook's echo of the secret is redacted in keyrotd's log; the admin key never appears.
        let text = daemon.log()
        server.adminKey.withExposedText { #expect(!text.contains($0), "the admin key reached keyrotd's log") }
        #expect(text.contains("deployed "), "hook output is logged")
        for name in Self.keys {
            let secret = try String(contentsOfFile: scratch.file("consumer-\(name)"), encoding: .utf8).trimmingCharacters(in: .newlines)
            #expect(!text.contains(secret), "a secret reached keyrotd's log")
        }
    }

    /// One key whose hook always fails keeps its old key and retries; the others
    /// rotate on regardless.
    @Test func aFailingKeyNeverStallsTheOthers() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try MistralServer(in: scratch)
        defer { server.stop() }
        let hook = try consumerHook(in: scratch, failingFor: "broken")
        let config = try daemonConfig(in: scratch, server: server, keys: ["broken", "healthy"], hook: hook, rotateEvery: "4s", overlap: "1s")
        let daemon = try DaemonProcess(config: config, logPath: scratch.file("keyrotd.log"))
        let settled = try await waitFor(seconds: 40) {
            try await server.keys().filter { isKeyrotdKey($0, of: "healthy") && $0["deleted_at"] is String }.count >= 2
        }
        daemon.signal(SIGTERM)
        #expect(await daemon.wait(timeout: .seconds(20)) == 0)
        #expect(settled, "the healthy key did not rotate:\n\(daemon.log())")
        let broken = try await server.keys().filter { isKeyrotdKey($0, of: "broken") }
        #expect(broken.count == 1, "the broken key's first key was created and nothing else")
        #expect(broken.allSatisfy { !($0["deleted_at"] is String) }, "no key of the broken key was deleted")
        #expect(daemon.log().contains("hook_exit_3"))
        let status = try keyrotd(["status", "--json", "--config", config])
        #expect(status.stdout.contains("\"code\" : \"hook_exit_3\""), "\(status.stdout)")
    }

    /// SIGTERM with a hook in flight: the hook is abandoned within the grace period
    /// and keyrotd exits 0 with the step persisted for the next start.
    @Test func sigtermWithAHangingHookExitsCleanly() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try MistralServer(in: scratch)
        defer { server.stop() }
        let hook = try scratch.write("hooks/slow", "#!/bin/sh\ntouch \(scratch.file("hook-started"))\nsleep 60\n", mode: 0o755)
        let config = try daemonConfig(in: scratch, server: server, keys: ["slow"], hook: hook, rotateEvery: "1h", overlap: "1s",
                                      extra: "")
        let daemon = try DaemonProcess(config: config, logPath: scratch.file("keyrotd.log"))
        let started = try await waitFor(seconds: 20) { FileManager.default.fileExists(atPath: scratch.file("hook-started")) }
        #expect(started, "the hook never started:\n\(daemon.log())")
        daemon.signal(SIGTERM)
        let status = await daemon.wait(timeout: .seconds(15))
        #expect(status == 0, "\(daemon.log())")
        let state = try keyrotd(["status", "--json", "--config", config])
        #expect(state.stdout.contains("\"phase\" : \"deploying\""), "\(state.stdout)")
    }

    @Test func aSecondDaemonOnTheSameStateIsRefused() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try MistralServer(in: scratch)
        defer { server.stop() }
        let hook = try consumerHook(in: scratch)
        let config = try daemonConfig(in: scratch, server: server, keys: ["solo"], hook: hook, rotateEvery: "1h", overlap: "1s")
        let first = try DaemonProcess(config: config, logPath: scratch.file("first.log"))
        #expect(try await waitFor(seconds: 20) { first.log().contains("keyrotd running") })
        let second = try DaemonProcess(config: config, logPath: scratch.file("second.log"))
        #expect(await second.wait(timeout: .seconds(10)) == 75)
        #expect(second.log().contains("lock"), "\(second.log())")
        first.signal(SIGTERM)
        #expect(await first.wait(timeout: .seconds(10)) == 0)
    }
}


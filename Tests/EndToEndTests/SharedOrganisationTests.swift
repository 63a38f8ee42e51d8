import Foundation
import Glibc
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// Two keyrotd deployments in one organisation (one server), managing the same key
/// names in the same workspace, each with its own state file and consumers,
/// rotating every few seconds for about a minute: neither ever deletes the
/// other's keys, and every consumer of both always holds a key the server accepts.
/// One deployment sets `[daemon] instance`, the other runs under the one drawn at
/// its first start.
@Suite(.serialized) struct SharedOrganisationTests {
    static let keys = ["app", "web"]
    static let overlap: TimeInterval = 1
    /// How long both rotate every few seconds.
    static let rotating: Duration = longTests ? .seconds(180) : .seconds(60)

    struct Deployment {
        let scratch: Scratch
        let config: String
        var daemon: DaemonProcess

        /// Every key id this deployment's log says it deleted (retired or swept).
        func deleted() -> Set<String> {
            var ids: Set<String> = []
            let text = daemon.log()
            for line in text.split(separator: "\n") {
                let field = line.contains(" event=key-retired") ? "old_key_id=" : line.contains(" event=orphan-deleted") ? "key_id=" : nil
                guard let field else { continue }
                for part in line.split(separator: " ") where part.hasPrefix(field) {
                    ids.insert(String(part.dropFirst(field.count)))
                }
            }
            return ids
        }
    }

    @Test func twoDeploymentsNeverDeleteEachOthersKeys() async throws {
        let serverScratch = try Scratch()
        defer { serverScratch.remove() }
        let server = try MistralServer(in: serverScratch)
        defer { server.stop() }
        var deployments: [Deployment] = []
        for daemonExtra in ["instance = \"prod\"", ""] {
            let scratch = try Scratch()
            let hook = try consumerHook(in: scratch)
            let config = try daemonConfig(
                in: scratch, server: server, keys: Self.keys, hook: hook, rotateEvery: "3s", overlap: "1s", daemonExtra: daemonExtra)
            deployments.append(Deployment(scratch: scratch, config: config, daemon: try DaemonProcess(config: config, logPath: scratch.file("keyrotd.log"))))
        }
        defer { for deployment in deployments { deployment.scratch.remove() } }

        // Throughout: every consumer of both holds a key the server accepts.
        var checks = 0
        var refused: [String] = []
        let end = ContinuousClock.now + Self.rotating
        while ContinuousClock.now < end {
            for (index, deployment) in deployments.enumerated() {
                for key in Self.keys {
                    let path = deployment.scratch.file("consumer-\(key)")
                    guard let held = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
                    checks += 1
                    if await server.accepts(Secret(held.trimmingCharacters(in: .newlines))) { continue }
                    // A deploy may have replaced the file, and the overlap ended, since it was read.
                    let now = (try? String(contentsOfFile: path, encoding: .utf8)) ?? held
                    if now != held, await server.accepts(Secret(now.trimmingCharacters(in: .newlines))) { continue }
                    refused.append("deployment \(index) \(key) at \(Date())")
                }
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(refused.isEmpty, "consumers held keys the server refuses: \(refused.prefix(10))\n\(deployments.map { $0.daemon.log().suffix(3000) })")

        // Settle both: no new rotations, the ones in flight finish.
        for deployment in deployments {
            let text = try String(contentsOfFile: deployment.config, encoding: .utf8)
            try text.replacingOccurrences(of: "rotate_every = \"3s\"", with: "rotate_every = \"1h\"")
                .write(toFile: deployment.config, atomically: true, encoding: .utf8)
            deployment.daemon.signal(SIGHUP)
        }
        for deployment in deployments {
            let settled = try await waitFor(seconds: 40) { try allIdle(config: deployment.config, keys: Self.keys.count) }
            #expect(settled, "did not settle:\n\(deployment.daemon.log().suffix(3000))")
        }

        // Who deleted what: every DELETE the server answered 200 is claimed by exactly one
        // deployment's log, and targets a key named for that deployment's instance.
        let serverKeys = try await server.keys()
        let names = Dictionary(serverKeys.compactMap { key in key.string("key_id").map { ($0, key.string("name") ?? "") } }) { first, _ in first }
        let instances = try deployments.map { deployment -> String in
            let deployed = try #require(deploys(in: deployment.scratch).first, "no deploy:\n\(deployment.daemon.log().suffix(3000))")
            return try #require(names[deployed.id].flatMap(ProviderKeyName.init)?.instance)
        }
        #expect(instances[0] == "prod")
        #expect(instances[1] != "prod" && instances[1].count == 8, "a drawn instance: \(instances[1])")
        let deletedBy = deployments.map { $0.deleted() }
        let deletes = try await server.requestLog().filter { $0.string("method") == "DELETE" && ($0["status"] as? Int) == 200 }
        #expect(deletes.count >= 8, "too few deletions to tell anything: \(deletes.count)")
        for delete in deletes {
            let id = try #require(delete.string("key_id"))
            let owners = deletedBy.indices.filter { deletedBy[$0].contains(id) }
            let named = names[id].flatMap(ProviderKeyName.init)?.instance
            #expect(owners.count == 1, "\(id) (\(names[id] ?? "?")) deleted by deployments \(owners)")
            for owner in owners {
                #expect(named == instances[owner], "deployment \(owner) (\(instances[owner])) deleted \(id) named \(names[id] ?? "?")")
            }
        }

        // And each deployment, on its own, meets the invariants of issue 6.
        var rotations: [Int] = []
        for (deployment, instance) in zip(deployments, instances) {
            let (count, _) = try await checkSettledInvariants(
                scratch: deployment.scratch, server: server, config: deployment.config, keys: Self.keys, overlap: Self.overlap,
                instance: instance)
            rotations.append(count)
            #expect(count >= 2 * Self.keys.count, "too few rotations: \(count)")
        }
        for deployment in deployments {
            deployment.daemon.signal(SIGTERM)
            #expect(await deployment.daemon.wait(timeout: .seconds(15)) == 0)
        }
        print("shared organisation: \(checks) consumer checks, rotations \(rotations), \(deletes.count) deletions, instances \(instances)")
    }
}

import Foundation
import Glibc
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// One daemon with its server, scratch directory and consumer hook.
struct Fleet {
    let scratch: Scratch
    let server: MistralServer
    let config: String
    let socket: String
    var daemon: DaemonProcess
    /// What keyrotd is started through (see `DaemonProcess`).
    let launcher: [String]

    /// `moreHooks` returns further deploy hooks, run after the consumer hook.
    init(
        keys: [String] = ["alpha"], rotateEvery: String = "1h", overlap: String = "30min", extra: String = "",
        providerExtra: String = "", hookDelay: Int = 0, environment: [String: String] = [:],
        seed: (MistralServer) async throws -> Void = { _ in },
        moreHooks: (Scratch) throws -> [String] = { _ in [] }, launcher: [String] = []
    ) async throws {
        scratch = try Scratch()
        server = try MistralServer(in: scratch)
        try await seed(server)
        let hook = try consumerHook(in: scratch, delay: hookDelay)
        config = try daemonConfig(
            in: scratch, server: server, keys: keys, hook: hook, moreHooks: try moreHooks(scratch), rotateEvery: rotateEvery,
            overlap: overlap, extra: extra, providerExtra: providerExtra)
        socket = scratch.file("control.sock")
        self.launcher = launcher
        daemon = try DaemonProcess(
            config: config, logPath: scratch.file("keyrotd.log"), environment: environment, launcher: launcher)
    }

    /// Stops the daemon (SIGTERM) and starts a new one on the same files;
    /// returns the old one's exit status.
    mutating func restart() async throws -> Int32? {
        daemon.signal(SIGTERM)
        let status = await daemon.wait(timeout: .seconds(20))
        try start()
        return status
    }

    /// Starts a new daemon (the old one must have exited), logging to a new file.
    mutating func start(environment: [String: String] = [:]) throws {
        daemon = try DaemonProcess(
            config: config, logPath: scratch.file("keyrotd-\(UUID().uuidString.prefix(4)).log"), environment: environment,
            launcher: launcher)
    }

    func stop() async -> Int32? {
        daemon.signal(SIGTERM)
        let status = await daemon.wait(timeout: .seconds(20))
        server.stop()
        return status
    }

    func cli(_ arguments: [String]) throws -> Outcome {
        try keyrotd(arguments + ["--socket", socket])
    }

    /// The first deploy of `key`: its key id.
    func firstDeploy(of key: String) async throws -> String {
        _ = try await waitFor(seconds: 30) { deploys(in: scratch).contains { $0.key == key } }
        return try #require(deploys(in: scratch).first { $0.key == key }?.id, "no deploy:\n\(daemon.log())")
    }

    func live(_ key: String) async throws -> [[String: Any]] {
        try await server.keys().filter { isKeyrotdKey($0, of: key) && !($0["deleted_at"] is String) }
    }

    /// Every daemon log line with `event=<event>`, across restarts.
    func events(_ event: String) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: scratch.path)) ?? []
        return files.filter { $0.hasPrefix("keyrotd") && $0.hasSuffix(".log") }.sorted().flatMap { file in
            ((try? String(contentsOfFile: scratch.file(file), encoding: .utf8)) ?? "")
                .split(separator: "\n").map(String.init).filter { $0.contains(" event=\(event)") }
        }
    }
}

@Suite(.serialized) struct ControlEndToEndTests {
    @Test func withNoDaemonTheCommandsSaySoAndExit69() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        for arguments in [["rotate", "alpha"], ["revoke", "alpha"], ["audit"], ["delete-orphan", "x"]] {
            let outcome = try keyrotd(arguments + ["--socket", scratch.file("control.sock")])
            #expect(outcome.status == 69, "\(arguments): \(outcome.stderr)")
            #expect(outcome.stderr.contains("not running"), "\(outcome.stderr)")
        }
    }

    /// Revoke: the consumer hook gets the new key first, then the old key is
    /// deleted at once although the overlap is an hour.
    @Test func revokeDeletesTheOldKeyRightAfterTheDeploy() async throws {
        let fleet = try await Fleet()
        defer { fleet.scratch.remove() }
        let old = try await fleet.firstDeploy(of: "alpha")
        let outcome = try fleet.cli(["revoke", "alpha", "--wait", "--timeout", "60s"])
        #expect(outcome.status == 0, "\(outcome.stdout)\(outcome.stderr)\n\(fleet.daemon.log())")
        #expect(outcome.stdout.contains("revoked"), "\(outcome.stdout)")

        let log = try await fleet.server.requestLog()
        let deletion = try #require(log.first { $0.string("method") == "DELETE" && $0.string("key_id") == old && ($0["status"] as? Int) == 200 })
        let deletedAt = try #require(deletion.date("time"))
        let new = try #require(deploys(in: fleet.scratch).last { $0.key == "alpha" })
        #expect(new.id != old)
        #expect(new.at <= deletedAt, "the consumer hook ran before the old key was deleted")
        #expect(deletedAt.timeIntervalSince(new.at) < 30, "no overlap: deleted \(deletedAt.timeIntervalSince(new.at))s after the deploy")
        let live = try await fleet.live("alpha")
        #expect(live.map { $0.string("key_id") } == [new.id])
        #expect(fleet.events("revoke-requested").count == 1)
        #expect(fleet.events("control-request").contains { $0.contains("command=revoke") && $0.contains("peer_uid=0") })
        #expect(await fleet.stop() == 0)
    }

    /// A rotation in flight: a second rotate is refused; revoke joins it, deletes
    /// the old key at once and then replaces the key deployed before the request.
    @Test func rotateIsRefusedInFlightAndRevokeJoinsIt() async throws {
        let fleet = try await Fleet()
        defer { fleet.scratch.remove() }
        let first = try await fleet.firstDeploy(of: "alpha")
        let rotate = try fleet.cli(["rotate", "alpha", "--wait", "--timeout", "60s"])
        #expect(rotate.status == 0, "\(rotate.stdout)\(rotate.stderr)")
        #expect(rotate.stdout.contains("deployed; old key \(first) is deleted"), "\(rotate.stdout)")
        let second = try #require(deploys(in: fleet.scratch).last?.id)
        #expect(second != first)

        let again = try fleet.cli(["rotate", "alpha"])
        #expect(again.status == 75)
        #expect(again.stderr.contains("already in flight (overlapping)"), "\(again.stderr)")
        let unknown = try fleet.cli(["rotate", "nosuch"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("no managed key named nosuch (managed: alpha)"), "\(unknown.stderr)")

        let revoke = try fleet.cli(["revoke", "alpha", "--wait", "--timeout", "60s"])
        #expect(revoke.status == 0, "\(revoke.stdout)\(revoke.stderr)\n\(fleet.daemon.log())")
        let keys = try await fleet.server.keys()
        for id in [first, second] {
            #expect(keys.first { $0.string("key_id") == id }?["deleted_at"] is String, "\(id) survived the revoke")
        }
        let live = try await fleet.live("alpha")
        #expect(live.count == 1)
        let consumer = try String(contentsOfFile: fleet.scratch.file("consumer-alpha"), encoding: .utf8).trimmingCharacters(in: .newlines)
        #expect(await fleet.server.accepts(Secret(consumer)))
        #expect(await fleet.stop() == 0)
    }

    /// The socket is 0660: a user outside its group cannot connect (77); one in
    /// its group passes the file mode and the daemon's SO_PEERCRED check.
    @Test func onlyRootTheDaemonsUserAndItsGroupMayUseTheSocket() async throws {
        let fleet = try await Fleet()
        defer { fleet.scratch.remove() }
        _ = try await fleet.firstDeploy(of: "alpha")
        var info = stat()
        #expect(stat(fleet.socket, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o660)
        let stranger = try runTool("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", keyrotdBinary, "rotate", "alpha", "--socket", fleet.socket], environment: ["PATH": "/usr/bin:/bin"])
        #expect(stranger.status == 77, "\(stranger.stdout)\(stranger.stderr)")
        #expect(stranger.stderr.contains("permission"), "\(stranger.stderr)")
        let member = try runTool("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--groups=\(info.st_gid)", keyrotdBinary, "rotate", "alpha", "--socket", fleet.socket], environment: ["PATH": "/usr/bin:/bin"])
        #expect(member.status == 0, "\(member.stdout)\(member.stderr)")
        #expect(fleet.events("control-request").contains { $0.contains("peer_uid=65534") })
        #expect(await fleet.stop() == 0)
    }

    /// Garbage, a wrong version and an oversized request get error replies; the
    /// daemon keeps serving.
    @Test func badRequestsAreAnsweredAndTheDaemonCarriesOn() async throws {
        let fleet = try await Fleet()
        defer { fleet.scratch.remove() }
        _ = try await fleet.firstDeploy(of: "alpha")
        #expect(try rawExchange(fleet.socket, Array("not json\n".utf8)).contains("\"bad_request\""))
        #expect(try rawExchange(fleet.socket, Array("{\"version\":99,\"command\":\"ping\"}\n".utf8)).contains("\"unsupported_version\""))
        #expect(try rawExchange(fleet.socket, [UInt8](repeating: UInt8(ascii: "x"), count: 200_000)).contains("\"too_large\""))
        #expect(try rawExchange(fleet.socket, Array("{\"version\":1,\"command\":\"rotate\"}\n".utf8)).contains("\"bad_request\""))
        let pong = try ControlClient.send(ControlRequest(command: .ping), to: fleet.socket, expecting: ControlPong.self, timeout: .seconds(10))
        #expect(pong.ok && pong.result?.keys == 1)
        let status = try ControlClient.send(ControlRequest(command: .status), to: fleet.socket, expecting: [KeyProgress].self, timeout: .seconds(10))
        #expect(status.result?.map(\.key) == ["alpha"])
        #expect(await fleet.stop() == 0)
    }

    /// A `key` or `key_id` that is no key name or id (a newline, a terminal escape,
    /// kilobytes of junk) is refused as a bad request before anything of it is
    /// logged: it could otherwise forge journal lines or fill them.
    @Test func aMalformedKeyIsRefusedBeforeItIsLogged() async throws {
        let fleet = try await Fleet()
        defer { fleet.scratch.remove() }
        _ = try await fleet.firstDeploy(of: "alpha")
        let marker = "FORGED\(UUID().uuidString.prefix(8))"
        let forged = "alpha\\nkeyrotd[1]: \(marker) \\u001b[2J" + String(repeating: "x", count: 4000)
        for field in ["key", "key_id"] {
            let command = field == "key" ? "rotate" : "delete-orphan"
            let reply = try rawExchange(fleet.socket, Array("{\"version\":1,\"command\":\"\(command)\",\"\(field)\":\"\(forged)\"}\n".utf8))
            #expect(reply.contains("\"bad_request\""), "\(field): \(reply)")
            #expect(!reply.contains(marker), "\(field): the reply quotes the value")
        }
        #expect(await fleet.stop() == 0)
        let log = fleet.daemon.log()
        #expect(!log.contains(marker), "the daemon logged an invalid key field")
        #expect(log.contains("refused: key is not a valid key name"), "\(log)")
    }

    /// While a slow deploy hook holds the new secret (it is in the state until
    /// every hook succeeded), no reply carries it.
    @Test func noReplyCarriesTheSecretInFlight() async throws {
        let fleet = try await Fleet(hookDelay: 3)
        defer { fleet.scratch.remove() }
        var replies: [String] = []
        let deadline = Date() + 30
        while deploys(in: fleet.scratch).isEmpty && Date() < deadline {
            if let reply = try? rawExchange(fleet.socket, Array("{\"version\":1,\"command\":\"status\"}\n".utf8)) {
                replies.append(reply)
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        let secret = try String(contentsOfFile: fleet.scratch.file("consumer-alpha"), encoding: .utf8).trimmingCharacters(in: .newlines)
        #expect(secret.count > 8)
        #expect(replies.contains { $0.contains("\"deploying\"") }, "no reply was taken while the hook ran")
        #expect(!replies.contains { $0.contains(secret) }, "a control reply carries the secret")
        #expect(await fleet.stop() == 0)
    }
}

/// Writes `bytes` to the socket as they are and returns the reply line.
func rawExchange(_ path: String, _ bytes: [UInt8]) throws -> String {
    String(decoding: try ControlClient.exchange(bytes, with: path, timeout: .seconds(10)), as: UTF8.self)
}

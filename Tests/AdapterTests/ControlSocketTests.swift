import Dispatch
import Foundation
import Glibc
import Logging
import Synchronization
import Testing
import TestSupport
@testable import KeyRotation
@testable import KeyRotationAdapters

/// The control socket over real Unix sockets in a scratch directory: the server's
/// answers to good, bad, slow and unauthorized clients, and the client's errors.
struct ControlSocketTests {
    static let ping = #"{"version":1,"command":"ping"}"#

    @Test func aRequestReachesTheHandlerWithItsPeerAndTheReplyComesBack() throws {
        let fixture = try ControlFixture()
        let peers = Mutex<[ControlPeer]>([])
        try fixture.start { request, peer, responder in
            peers.withLock { $0.append(peer) }
            responder.reply(ControlResponse(result: ControlPong(pid: getpid(), keys: request.command == .ping ? 3 : 0)))
        }
        let response = try ControlClient.send(
            ControlRequest(command: .ping), to: fixture.path, expecting: ControlPong.self, timeout: .seconds(10))
        #expect(response.ok)
        #expect(response.result == ControlPong(pid: getpid(), keys: 3))
        let peer = try #require(peers.withLock { $0.first })
        #expect(peer.pid == getpid())
        #expect(peer.uid == geteuid())
        #expect(peer.gid == getegid())
    }

    @Test func theHandlerMayReplyLaterFromAnotherThreadAndOnlyTheFirstReplyCounts() throws {
        let fixture = try ControlFixture()
        var record = KeyRecord(name: "dev-team", seed: 1)
        record.nextDue = Date(timeIntervalSince1970: 1_790_000_000.123)
        let progress = KeyProgress(record: record, message: "rotation started")
        try fixture.start { _, _, responder in
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(200)) {
                responder.reply(ControlResponse(result: progress))
                responder.reply(ControlResponse(result: KeyProgress(record: KeyRecord(name: "other", seed: 2))))
                responder.fail(ControlError(code: "refused", message: "too late"))
            }
        }
        let response = try ControlClient.send(
            ControlRequest(command: .rotate, key: "dev-team"), to: fixture.path, expecting: KeyProgress.self,
            timeout: .seconds(10))
        #expect(response.result == progress)
    }

    struct BadRequest: Sendable, CustomTestStringConvertible {
        var line: String
        var code: String
        var mentions: String
        var testDescription: String { "\(code): \(line.prefix(40))" }
    }

    static let badRequests = [
        BadRequest(line: "this is not JSON", code: "bad_request", mentions: "not valid JSON"),
        BadRequest(line: "[1, 2]", code: "bad_request", mentions: "not a JSON object"),
        BadRequest(line: #"{"version":1}"#, code: "bad_request", mentions: "\"command\""),
        BadRequest(line: #"{"command":"ping"}"#, code: "bad_request", mentions: "\"version\""),
        BadRequest(line: #"{"version":1,"command":"frobnicate"}"#, code: "bad_request", mentions: "unknown command"),
        BadRequest(line: #"{"version":1,"command":"rotate","key":7}"#, code: "bad_request", mentions: "\"key\""),
        BadRequest(line: #"{"version":2,"command":"ping"}"#, code: "unsupported_version", mentions: "version 1, not 2"),
        BadRequest(
            line: #"{"version":1,"command":"ping","key":""# + String(repeating: "x", count: 70_000) + #""}"#,
            code: "too_large", mentions: "65536 bytes"),
    ]

    @Test(arguments: badRequests)
    func aBadRequestIsAnsweredWithoutTheHandlerAndTheServerServesTheNextOne(_ bad: BadRequest) throws {
        let fixture = try ControlFixture()
        let calls = Counter()
        try fixture.start(handler: Self.pong(counting: calls))
        let error = try #require(try fixture.exchange(bad.line).error)
        #expect(error.code == bad.code)
        #expect(error.message.contains(bad.mentions), "\(error.message)")
        #expect(calls.count == 0)
        #expect(try fixture.exchange(Self.ping).ok)
        #expect(calls.count == 1)
    }

    @Test func halfARequestAndThenSilenceIsAnsweredTimeout() throws {
        let fixture = try ControlFixture()
        try fixture.start(limits: ControlServerLimits(readTimeout: .milliseconds(300)), handler: Self.pong())
        let socket = try fixture.connect()
        defer { socket.close() }
        try socket.sendAll(Array(#"{"version":1,"#.utf8), until: .now + .seconds(10))
        let reply = try socket.receiveLine(limit: 4096, until: .now + .seconds(10))
        #expect(try ControlFixture.decode(reply).error?.code == "timeout")
    }

    /// The read timeout is one deadline for the whole request, not a pause allowed
    /// between reads: a byte every 50 ms would keep a per-read timer from ever firing.
    @Test func aClientTricklingBytesIsCutOffAtTheReadDeadline() throws {
        let fixture = try ControlFixture()
        try fixture.start(limits: ControlServerLimits(readTimeout: .milliseconds(300)), handler: Self.pong())
        let socket = try fixture.connect()
        defer { socket.close() }
        let giveUp = ContinuousClock.now + .seconds(10)
        var answered = false
        while !answered, ContinuousClock.now < giveUp {
            try socket.sendAll([UInt8(ascii: " ")], until: giveUp)
            answered = try socket.wait(for: Int16(POLLIN), until: .now + .milliseconds(50))
        }
        try #require(answered, "the server never cut the trickling client off")
        let reply = try socket.receiveLine(limit: 4096, until: .now + .seconds(10))
        #expect(try ControlFixture.decode(reply).error?.code == "timeout")
    }

    @Test func aClientThatLeavesAtOnceIsClosedQuietly() throws {
        let fixture = try ControlFixture()
        let calls = Counter()
        try fixture.start(handler: Self.pong(counting: calls))
        for _ in 0..<5 { try fixture.connect().close() }
        #expect(try fixture.exchange(Self.ping).ok)
        #expect(calls.count == 1)
        #expect(fixture.recorder.all.filter { $0.level >= .notice }.isEmpty)
    }

    @Test func connectionsBeyondTheLimitAreAnsweredBusy() throws {
        let fixture = try ControlFixture()
        try fixture.start(limits: ControlServerLimits(maxConnections: 2), handler: Self.pong())
        let waiting = try [fixture.connect(), fixture.connect()]
        #expect(try fixture.exchange(Self.ping).error?.code == "busy")
        for socket in waiting { socket.close() }
        // The server notices the two leaving in its own time.
        let giveUp = ContinuousClock.now + .seconds(10)
        var served = false
        while !served, ContinuousClock.now < giveUp {
            served = try fixture.exchange(Self.ping).ok
            if !served { usleep(20_000) }
        }
        #expect(served)
    }

    @Test func aHandlerThatNeverRepliesIsAnsweredTimeoutAndItsLateReplyIgnored() throws {
        let fixture = try ControlFixture()
        let kept = Mutex<ControlResponder?>(nil)
        try fixture.start(limits: ControlServerLimits(replyTimeout: .milliseconds(300))) { _, _, responder in
            kept.withLock { $0 = responder }
        }
        #expect(try fixture.exchange(Self.ping).error?.code == "timeout")
        kept.withLock { $0 }?.reply(ControlResponse(result: ControlPong(pid: 1, keys: 1)))
        #expect(fixture.recorder.all.contains { $0.level == .warning && $0.message.contains("not answered") })
    }

    @Test func stopAnswersOpenRequestsShuttingDownAndRemovesTheSocket() throws {
        let fixture = try ControlFixture()
        let handed = DispatchSemaphore(value: 0)
        let kept = Mutex<ControlResponder?>(nil)
        let server = try fixture.start { _, _, responder in
            kept.withLock { $0 = responder }
            handed.signal()
        }
        let answered = DispatchSemaphore(value: 0)
        let reply = Mutex<Result<ControlResponse<NoResult>, ControlClientError>?>(nil)
        let path = fixture.path
        DispatchQueue.global().async {
            let result = Result { () throws(ControlClientError) in
                try ControlClient.send(ControlRequest(command: .status), to: path, expecting: NoResult.self, timeout: .seconds(10))
            }
            reply.withLock { $0 = result }
            answered.signal()
        }
        try #require(handed.wait(timeout: .now() + .seconds(10)) == .success)
        server.stop()
        try #require(answered.wait(timeout: .now() + .seconds(10)) == .success)
        #expect(try reply.withLock { $0 }?.get().error?.code == "shutting_down")
        #expect(access(fixture.path, F_OK) == -1 && errno == ENOENT)
        kept.withLock { $0 }?.fail(ControlError(code: "refused", message: "after stop"))
        server.stop()
        #expect(throws: ControlClientError.self) { try fixture.exchange(Self.ping) }
    }

    @Test func aStaleSocketFileIsReplaced() throws {
        let fixture = try ControlFixture()
        let stale = try UnixSocket.stream(blocking: true)
        try stale.bind(to: fixture.path)
        stale.close()
        try fixture.start(handler: Self.pong())
        #expect(try fixture.exchange(Self.ping).ok)
    }

    @Test(arguments: ["regular file", "directory"])
    func anythingButASocketAtThePathIsRefusedAndLeftAlone(_ kind: String) throws {
        let fixture = try ControlFixture()
        if kind == "directory" {
            try FileManager.default.createDirectory(atPath: fixture.path, withIntermediateDirectories: false)
        } else {
            try writeRaw(Array("precious\n".utf8), to: fixture.path)
        }
        let error = try #require(throws: ControlSocketError.self) { try fixture.start(handler: Self.pong()) }
        #expect(error.code == .notASocket)
        #expect(error.description.contains(fixture.path) && error.description.contains(kind))
        if kind == "regular file" { #expect(try readBytes(fixture.path) == Array("precious\n".utf8)) }
    }

    @Test func theSocketIsReadableAndWritableByOwnerAndGroupOnly() throws {
        let fixture = try ControlFixture()
        try fixture.start(handler: Self.pong())
        var status = stat()
        try #require(lstat(fixture.path, &status) == 0)
        #expect(status.st_mode & S_IFMT == S_IFSOCK)
        #expect(status.st_mode & 0o7777 == 0o660)
    }

    @Test func noSocketFileMeansNotRunning() throws {
        let fixture = try ControlFixture()
        let error = try #require(throws: ControlClientError.self) { try fixture.exchange(Self.ping) }
        #expect(error.code == .notRunning)
        #expect(error.exitCode == 69)
        #expect(error.message == "keyrotd is not running (no daemon listening on \(fixture.path))")
    }

    @Test func aSocketFileNobodyListensOnMeansNotRunning() throws {
        let fixture = try ControlFixture()
        let stale = try UnixSocket.stream(blocking: true)
        try stale.bind(to: fixture.path)
        stale.close()
        let error = try #require(throws: ControlClientError.self) { try fixture.exchange(Self.ping) }
        #expect(error.code == .notRunning)
        #expect(error.exitCode == 69)
    }

    @Test func aDaemonAnsweringGarbageIsABadResponse() throws {
        let fixture = try ControlFixture()
        try fixture.start { _, _, responder in
            responder.reply(ControlResponse(result: "not a pong"))
        }
        let error = try #require(throws: ControlClientError.self) {
            try ControlClient.send(
                ControlRequest(command: .ping), to: fixture.path, expecting: ControlPong.self, timeout: .seconds(10))
        }
        #expect(error.code == .badResponse)
        #expect(error.exitCode == 69)
    }

    // MARK: Peers

    /// The group the permission tests give the socket (through the directory's setgid bit).
    static let socketGroup: gid_t = 4242
    static let nobody: uid_t = 65534

    struct Knock: Sendable, CustomTestStringConvertible {
        var gid: gid_t
        var groups: [gid_t]
        var allowed: Bool
        var testDescription: String { "gid \(gid), groups \(groups): \(allowed ? "served" : "forbidden")" }
    }

    /// The socket is made 0666 so that the file's mode lets everybody in and only the
    /// server's own check decides.
    @Test(.enabled(if: geteuid() == 0, "dropping privileges needs root"), arguments: [
        Knock(gid: ControlSocketTests.nobody, groups: [], allowed: false),
        Knock(gid: ControlSocketTests.nobody, groups: [100, 4000], allowed: false),
        Knock(gid: ControlSocketTests.nobody, groups: [100, ControlSocketTests.socketGroup], allowed: true),
        Knock(gid: ControlSocketTests.socketGroup, groups: [], allowed: true),
    ])
    func onlyRootTheDaemonsUserAndTheSocketsGroupAreServed(_ knock: Knock) async throws {
        let fixture = try ControlFixture()
        try #require(chown(fixture.scratch.path, 0, Self.socketGroup) == 0)
        try #require(chmod(fixture.scratch.path, 0o2755) == 0)
        try fixture.start(handler: Self.pong())
        try #require(chmod(fixture.path, 0o666) == 0)
        let helper = try #require(TestHelper.url, "keyrotd-testhelper not found; build with swift build --build-tests")
        let output = fixture.scratch.file("helper.out")
        let groups = knock.groups.isEmpty ? "-" : knock.groups.map(String.init).joined(separator: ",")
        let child = try ChildProcess(
            helper.path, ["control-as", "\(Self.nobody)", "\(knock.gid)", groups, fixture.path, Self.ping],
            environment: [:], output: output)
        let status = await child.wait(timeout: .seconds(10))
        if status == nil { child.stop() }
        let printed = try String(contentsOfFile: output, encoding: .utf8)
        try #require(status == 0, "\(printed)")
        let response = try ControlFixture.decode(Array(printed.utf8.prefix { $0 != ControlWire.newline }))
        if knock.allowed {
            #expect(response.ok)
        } else {
            #expect(response.error?.code == "forbidden")
            let refusal = fixture.recorder.all.first { $0.level == .warning }
            #expect(refusal?.metadata["uid"] == "\(Self.nobody)")
            #expect(refusal?.metadata["pid"] == "\(child.pid)")
        }
    }

    // MARK: Helpers

    static func pong(counting calls: Counter = Counter()) -> @Sendable (ControlRequest, ControlPeer, ControlResponder) -> Void {
        { _, _, responder in
            calls.increment()
            responder.reply(ControlResponse(result: ControlPong(pid: getpid(), keys: 0)))
        }
    }
}

/// A control server on a socket in a fresh scratch directory; stopped and the
/// directory removed when the fixture goes.
final class ControlFixture {
    let scratch: Scratch
    let path: String
    let recorder = LogRecorder()
    private var server: ControlServer?

    init() throws {
        scratch = try Scratch()
        path = scratch.file("control.sock")
    }

    deinit {
        server?.stop()
        scratch.remove()
    }

    @discardableResult
    func start(
        limits: ControlServerLimits = .init(),
        handler: @escaping @Sendable (ControlRequest, ControlPeer, ControlResponder) -> Void
    ) throws -> ControlServer {
        let server = try ControlServer.start(path: path, logger: recorder.logger, limits: limits, handler: handler)
        self.server = server
        return server
    }

    /// Sends `line` as it is, newline added, and decodes the reply as an error or an
    /// empty result.
    func exchange(_ line: String) throws -> ControlResponse<NoResult> {
        try Self.decode(ControlClient.exchange(Array((line + "\n").utf8), with: path, timeout: .seconds(10)))
    }

    /// A raw connection, for clients that misbehave.
    func connect() throws -> UnixSocket {
        let socket = try UnixSocket.stream(blocking: true)
        do {
            try socket.connect(to: path)
        } catch {
            socket.close()
            throw error
        }
        return socket
    }

    static func decode(_ reply: [UInt8]) throws -> ControlResponse<NoResult> {
        try Timestamp.jsonDecoder().decode(ControlResponse<NoResult>.self, from: Data(reply))
    }
}

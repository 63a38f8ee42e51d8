import Dispatch
import Foundation
import Glibc
import KeyRotation
import Logging

/// Who is on the other end of a control connection, as the kernel recorded it at
/// connect(2) (SO_PEERCRED, SO_PEERGROUPS): not what the client claims.
public struct ControlPeer: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    /// Supplementary groups; empty where the kernel cannot tell them (before 4.13).
    public var groups: [UInt32]

    public init(pid: Int32, uid: UInt32, gid: UInt32, groups: [UInt32]) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }
}

public struct ControlServerLimits: Sendable {
    /// A longer request line is answered `too_large`.
    public var maxRequestBytes: Int
    /// The whole request must arrive within this time of connecting (a total deadline,
    /// so a client trickling bytes cannot hold a connection); otherwise `timeout`. It
    /// also bounds how long a client may take to read its reply.
    public var readTimeout: Duration
    /// Connections open at once (reading, waiting for the handler, or being answered);
    /// one more is answered `busy`.
    public var maxConnections: Int
    /// A request the handler has not answered within this time is answered `timeout`.
    public var replyTimeout: Duration

    public init(
        maxRequestBytes: Int = ControlProtocol.maxRequestBytes, readTimeout: Duration = .seconds(5),
        maxConnections: Int = 16, replyTimeout: Duration = .seconds(300)
    ) {
        self.maxRequestBytes = maxRequestBytes
        self.readTimeout = readTimeout
        self.maxConnections = maxConnections
        self.replyTimeout = replyTimeout
    }
}

/// The daemon's end of the control socket (protocol: `ControlProtocol`).
///
/// Contract:
/// - One thread does all the socket work, sleeping in poll(2) until a socket is ready,
///   a deadline passes or a reply is posted; nothing polls on a timer.
/// - Only a complete, well-formed request of this protocol version from an allowed
///   peer (see `ControlAccess`) reaches `handler`. Every other connection is answered
///   by the server itself (`forbidden`, `too_large`, `timeout`, `bad_request`,
///   `unsupported_version`, `busy`) and closed; a client that leaves without sending
///   anything is just closed.
/// - `handler` runs on the server's thread and must return quickly: it forwards the
///   request and replies through the `ControlResponder`, then or later, from any
///   thread. A request left unanswered for `replyTimeout` is answered `timeout`.
/// - Nothing from a request body is logged; refusals are logged with the peer's pid
///   and uid.
public final class ControlServer: Sendable {
    public let path: String
    private let mailbox: ControlMailbox
    /// Signalled when the server's thread has ended.
    private let finished = DispatchSemaphore(value: 0)

    private init(path: String, mailbox: ControlMailbox) {
        self.path = path
        self.mailbox = mailbox
    }

    /// Binds a Unix stream socket at `path`, makes it 0660 and listens.
    ///
    /// A stale socket file at `path` is replaced: the caller holds the state lock, so
    /// nobody else listens there. Anything that is not a socket is refused and left
    /// alone.
    public static func start(
        path: String, logger: Logger, limits: ControlServerLimits = .init(),
        handler: @escaping @Sendable (ControlRequest, ControlPeer, ControlResponder) -> Void
    ) throws(ControlSocketError) -> ControlServer {
        let listener = try ControlListener.bind(at: path)
        let mailbox: ControlMailbox
        do {
            mailbox = try ControlMailbox()
        } catch {
            listener.close()
            throw .io(error, "create the wake-up channel of", path)
        }
        let server = ControlServer(path: path, mailbox: mailbox)
        let access = ControlAccess(ownUID: geteuid(), socketGroup: listener.group)
        let finished = server.finished
        // The thread holds the mailbox, not the server: dropping the server stops it.
        let thread = Thread {
            var loop = ControlEventLoop(
                listener: listener, access: access, mailbox: mailbox, limits: limits, logger: logger,
                handler: handler)
            loop.run()
            finished.signal()
        }
        thread.name = "keyrotd-control"
        thread.start()
        return server
    }

    /// Stops accepting and removes the socket file, answers every open request
    /// `shutting_down` (replies already posted still go out, within a short grace),
    /// closes the connections, and returns once the server's thread has ended.
    /// Idempotent. Must not be called from `handler`, which runs on that thread.
    public func stop() {
        mailbox.requestStop()
        finished.wait()
        finished.signal()
    }

    deinit {
        stop()
    }
}

/// Answers one control request, from any thread, at any later time.
///
/// The first reply is sent; later ones are ignored, as is a reply to a request the
/// server already answered itself (`timeout`, `shutting_down`).
public struct ControlResponder: Sendable {
    let connection: UInt64
    let mailbox: ControlMailbox

    public func reply<R: Codable & Sendable>(_ response: ControlResponse<R>) {
        mailbox.post(ControlWire.line(response), to: connection)
    }

    public func fail(_ error: ControlError) {
        reply(ControlResponse<NoResult>(error: error))
    }
}

import Glibc
import KeyRotation
import Logging

/// The server's thread: accepts, reads, hands requests to the handler and sends
/// replies, sleeping in poll(2) until a socket is ready, the earliest deadline passes
/// or the mailbox rings. All connection state lives here and is touched by this
/// thread only.
struct ControlEventLoop {
    /// How long replies already posted may take to go out once the server stops.
    static let shutdownGrace: Duration = .seconds(1)
    /// How long accepting pauses after accept(2) failed for want of resources
    /// (EMFILE and the like), which would otherwise wake poll at once, forever.
    static let acceptPause: Duration = .seconds(1)

    let listener: ControlListener
    let access: ControlAccess
    let mailbox: ControlMailbox
    let limits: ControlServerLimits
    let logger: Logger
    let handler: @Sendable (ControlRequest, ControlPeer, ControlResponder) -> Void

    private var connections: [UInt64: ControlConnection] = [:]
    private var lastID: UInt64 = 0
    private var listening = true
    private var acceptPausedUntil: ContinuousClock.Instant?
    /// Set once stopping: every connection is closed by then.
    private var shutdownDeadline: ContinuousClock.Instant?

    init(
        listener: ControlListener, access: ControlAccess, mailbox: ControlMailbox, limits: ControlServerLimits,
        logger: Logger, handler: @escaping @Sendable (ControlRequest, ControlPeer, ControlResponder) -> Void
    ) {
        self.listener = listener
        self.access = access
        self.mailbox = mailbox
        self.limits = limits
        self.logger = logger
        self.handler = handler
    }

    mutating func run() {
        defer {
            stopListening()
            for connection in connections.values { connection.socket.close() }
            mailbox.close()
        }
        while listening || !connections.isEmpty {
            expireDeadlines()
            let open = Array(connections.values)
            // poll(2) skips negative descriptors: a paused listener, connections
            // waiting for the handler.
            var entries = [
                pollfd(fd: mailbox.bell.descriptor.rawValue, events: Int16(POLLIN), revents: 0),
                pollfd(fd: isAccepting ? listener.socket.descriptor.rawValue : -1, events: Int16(POLLIN), revents: 0),
            ] + open.map { connection in
                pollfd(fd: connection.events == nil ? -1 : connection.socket.descriptor.rawValue,
                       events: connection.events ?? 0, revents: 0)
            }
            do {
                _ = try Syscall.poll(&entries, until: nextDeadline)
            } catch {
                logger.error("the control socket stopped serving: poll failed: \(error)")
                return
            }
            if entries[0].revents != 0 { readMailbox() }
            if entries[1].revents != 0 { acceptConnections() }
            for (index, connection) in open.enumerated() where entries[index + 2].revents != 0 {
                serve(connection.id)
            }
        }
    }

    private var isAccepting: Bool {
        listening && (acceptPausedUntil.map { ContinuousClock.now >= $0 } ?? true)
    }

    private var nextDeadline: ContinuousClock.Instant? {
        let deadlines = connections.values.map(\.deadline) + (listening ? [acceptPausedUntil].compactMap { $0 } : [])
        return deadlines.min()
    }

    // MARK: Accepting

    private mutating func acceptConnections() {
        acceptPausedUntil = nil
        while true {
            let accepted: UnixSocket?
            do {
                accepted = try listener.socket.accept()
            } catch {
                logger.warning("cannot accept control connections for now: \(error)")
                acceptPausedUntil = .now + Self.acceptPause
                return
            }
            guard let socket = accepted else { return }
            admit(socket)
        }
    }

    private mutating func admit(_ socket: UnixSocket) {
        guard let peer = try? socket.peer() else {
            socket.close()
            return
        }
        guard access.allows(peer) else {
            logger.warning("refused a control connection from a user who may not use the socket", metadata: peer.logMetadata)
            Self.answerAndClose(socket, .forbidden)
            return
        }
        guard connections.count < limits.maxConnections else {
            logger.notice("too many control connections open: answered busy", metadata: peer.logMetadata)
            Self.answerAndClose(socket, .busy(limits.maxConnections))
            return
        }
        lastID += 1
        connections[lastID] = ControlConnection(
            id: lastID, socket: socket, peer: peer, phase: .reading([]), deadline: .now + limits.readTimeout)
    }

    /// For a peer the server will not serve. The short reply fits a fresh socket's
    /// buffer, so one non-blocking send delivers it (or the peer is already gone).
    private static func answerAndClose(_ socket: UnixSocket, _ error: ControlError) {
        _ = try? socket.send(ControlWire.line(error)[...])
        socket.close()
    }

    // MARK: Serving

    private mutating func serve(_ id: UInt64) {
        guard var connection = connections[id] else { return }
        switch connection.phase {
        case .reading:
            switch connection.readRequest(limit: limits.maxRequestBytes) {
            case .waiting:
                connections[id] = connection
            case .gone:
                close(connection)
            case .tooLarge:
                refuse(&connection, .tooLarge(limit: limits.maxRequestBytes))
            case .request(let line):
                dispatch(line, on: &connection)
            }
        case .awaitingReply:
            break
        case .writing:
            switch connection.writeReply() {
            case .waiting: connections[id] = connection
            case .finished: close(connection)
            }
        }
    }

    private mutating func dispatch(_ line: ArraySlice<UInt8>, on connection: inout ControlConnection) {
        switch ControlWire.request(from: line) {
        case .failure(let error):
            refuse(&connection, error)
        case .success(let request):
            logger.debug(
                "control request", metadata: connection.peer.logMetadata.merging(["command": "\(request.command.rawValue)"]) { $1 })
            connection.phase = .awaitingReply
            connection.deadline = .now + limits.replyTimeout
            connections[connection.id] = connection
            handler(request, connection.peer, ControlResponder(connection: connection.id, mailbox: mailbox))
        }
    }

    /// Answers a request the handler never sees.
    private mutating func refuse(_ connection: inout ControlConnection, _ error: ControlError) {
        logger.info(
            "refused a control request: \(error.message)",
            metadata: connection.peer.logMetadata.merging(["code": "\(error.code)"]) { $1 })
        startWriting(ControlWire.line(error), on: &connection)
    }

    private mutating func startWriting(_ line: [UInt8], on connection: inout ControlConnection) {
        connection.phase = .writing(line, sent: 0)
        let deadline = ContinuousClock.now + limits.readTimeout
        connection.deadline = shutdownDeadline.map { min($0, deadline) } ?? deadline
        connections[connection.id] = connection
    }

    private mutating func close(_ connection: ControlConnection) {
        connection.socket.close()
        connections[connection.id] = nil
    }

    private mutating func expireDeadlines() {
        let now = ContinuousClock.now
        for var connection in connections.values where connection.deadline <= now {
            switch connection.phase {
            case .reading:
                refuse(&connection, .requestTimeout(limits.readTimeout))
            case .awaitingReply:
                logger.warning(
                    "a control request was not answered within the reply timeout", metadata: connection.peer.logMetadata)
                startWriting(ControlWire.line(.replyTimeout(limits.replyTimeout)), on: &connection)
            case .writing:
                close(connection)
            }
        }
    }

    // MARK: Replies and stopping

    private mutating func readMailbox() {
        let (replies, stopRequested) = mailbox.take()
        for reply in replies {
            guard var connection = connections[reply.connection], case .awaitingReply = connection.phase else { continue }
            startWriting(reply.line, on: &connection)
        }
        if stopRequested, listening { shutDown() }
    }

    private mutating func shutDown() {
        stopListening()
        let grace = ContinuousClock.now + Self.shutdownGrace
        shutdownDeadline = grace
        for var connection in connections.values {
            switch connection.phase {
            case .reading, .awaitingReply:
                startWriting(ControlWire.line(.shuttingDown), on: &connection)
            case .writing:
                connection.deadline = min(connection.deadline, grace)
                connections[connection.id] = connection
            }
        }
    }

    private mutating func stopListening() {
        guard listening else { return }
        listening = false
        listener.close()
    }
}

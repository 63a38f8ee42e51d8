import Glibc

/// One client of the control socket, from accept to close. Owned by the server's thread.
///
/// ```
///  reading --request--> awaitingReply --reply posted--> writing --all sent--> closed
///     |                      |                             ^
///     +-- bad / too large / --+-- reply timeout, stop ------+
///         read timeout, stop
/// ```
/// `deadline` is the phase's: the read timeout while reading, the reply timeout while
/// the handler has the request, the time the client has to take its reply while
/// writing (then the connection is just closed).
struct ControlConnection {
    enum Phase {
        case reading([UInt8])
        case awaitingReply
        case writing([UInt8], sent: Int)
    }

    enum ReadOutcome {
        case waiting
        /// The request line, without its newline.
        case request(ArraySlice<UInt8>)
        case tooLarge
        /// The client left without sending anything, or the socket failed.
        case gone
    }

    enum WriteOutcome {
        case waiting
        /// Everything was sent, or the client left and nothing more can be.
        case finished
    }

    let id: UInt64
    let socket: UnixSocket
    let peer: ControlPeer
    var phase: Phase
    var deadline: ContinuousClock.Instant

    /// What poll(2) should watch for: nothing while the handler has the request (a
    /// hung-up client would otherwise wake the loop again and again).
    var events: Int16? {
        switch phase {
        case .reading: Int16(POLLIN)
        case .awaitingReply: nil
        case .writing: Int16(POLLOUT)
        }
    }

    /// Reads what has arrived. A request ends at its first newline, or where the
    /// client stops sending (shutdown or close) after a non-empty line.
    mutating func readRequest(limit: Int) -> ReadOutcome {
        guard case .reading(var buffer) = phase else { return .waiting }
        let received: Int?
        do {
            received = try socket.receive(into: &buffer, limit: limit + 1 - buffer.count)
        } catch {
            return .gone
        }
        phase = .reading(buffer)
        guard let received else { return .waiting }
        if let newline = buffer.firstIndex(of: ControlWire.newline) {
            return newline > limit ? .tooLarge : .request(buffer[..<newline])
        }
        if buffer.count > limit { return .tooLarge }
        if received == 0 { return buffer.isEmpty ? .gone : .request(buffer[...]) }
        return .waiting
    }

    /// Sends as much of the reply as the socket takes.
    mutating func writeReply() -> WriteOutcome {
        guard case .writing(let line, let sent) = phase else { return .waiting }
        do {
            let count = try socket.send(line[sent...])
            phase = .writing(line, sent: sent + count)
            return sent + count == line.count ? .finished : .waiting
        } catch {
            return .finished
        }
    }
}

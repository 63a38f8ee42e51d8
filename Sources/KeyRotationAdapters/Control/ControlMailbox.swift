import Synchronization
import SystemPackage

/// Where other threads leave work for the server's thread: replies from responders and
/// the request to stop. Posting rings a bell the server's thread polls, so it sleeps
/// until there is something to do.
final class ControlMailbox: Sendable {
    struct Reply: Sendable {
        var connection: UInt64
        var line: [UInt8]
    }

    private struct Contents {
        var replies: [Reply] = []
        var stopRequested = false
        /// The server's thread has ended: nothing posted now would ever be read.
        var closed = false
    }

    private let contents = Mutex(Contents())
    /// The server's thread polls this end; a readable byte means "look in the mailbox".
    let bell: UnixSocket
    private let ringer: UnixSocket

    init() throws(Errno) {
        (bell, ringer) = try UnixSocket.pair()
    }

    /// Closed only here, when no responder can post any more: closing earlier could
    /// let a late post ring a descriptor number that is in use for something else.
    deinit {
        bell.close()
        ringer.close()
    }

    func post(_ line: [UInt8], to connection: UInt64) {
        deliver { $0.replies.append(Reply(connection: connection, line: line)) }
    }

    func requestStop() {
        deliver { $0.stopRequested = true }
    }

    /// Everything posted since the last call. The bell is silenced first, so a post
    /// that arrives meanwhile rings again instead of being missed.
    func take() -> (replies: [Reply], stopRequested: Bool) {
        var drained: [UInt8] = []
        while let count = try? bell.receive(into: &drained, limit: 256), count > 0 { drained.removeAll() }
        return contents.withLock { contents in
            defer { contents.replies = [] }
            return (contents.replies, contents.stopRequested)
        }
    }

    /// Called by the server's thread as it ends.
    func close() {
        contents.withLock { $0.closed = true }
    }

    private func deliver(_ change: (inout Contents) -> Void) {
        let delivered = contents.withLock { contents in
            guard !contents.closed else { return false }
            change(&contents)
            return true
        }
        // A full socket buffer means the bell is already ringing.
        if delivered { _ = try? ringer.send([0]) }
    }
}

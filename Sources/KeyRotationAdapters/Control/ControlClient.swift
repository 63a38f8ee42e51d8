import Foundation
import Glibc
import KeyRotation
import SystemPackage

/// The command line's end of the control socket: one request, one reply, synchronous.
public enum ControlClient {
    /// A longer reply is not keyrotd's: even an audit of a large organisation stays
    /// far below.
    static let maxReplyBytes = 64 << 20

    /// Connects to the daemon at `path`, sends `request`, and reads and decodes its
    /// reply, all within `timeout`.
    ///
    /// An error reply (`ok` false, "forbidden" among them) is a normal response: what it
    /// means for the user is the caller's to decide. Thrown are only the failures to
    /// get an answer at all, and answers that are not a control reply.
    public static func send<R: Codable & Sendable>(
        _ request: ControlRequest, to path: String, expecting: R.Type, timeout: Duration
    ) throws(ControlClientError) -> ControlResponse<R> {
        guard let body = try? Timestamp.compactJSONEncoder().encode(request) else {
            throw ControlClientError(code: .io, message: "could not encode the control request")
        }
        let reply = try exchange(Array(body) + [ControlWire.newline], with: path, timeout: timeout)
        return try decode(reply, as: R.self, from: path)
    }

    /// Sends `line` (a request and its newline, well-formed or not) and returns the
    /// reply line without its newline. Also for tests and the test helper.
    package static func exchange(_ line: [UInt8], with path: String, timeout: Duration) throws(ControlClientError) -> [UInt8] {
        let deadline = ContinuousClock.now + timeout
        let socket: UnixSocket
        do {
            socket = try UnixSocket.stream(blocking: true)
        } catch {
            throw .failed(error, path, timeout)
        }
        defer { socket.close() }
        do throws(Errno) {
            try socket.setSendTimeout(timeout)
            try socket.connect(to: path)
        } catch {
            throw .connecting(error, path, timeout)
        }
        do throws(Errno) {
            try socket.sendAll(line, until: deadline)
        } catch {
            // The daemon may have answered before reading everything (forbidden, busy,
            // too large) and closed: that answer is still there to read.
            guard error == .brokenPipe || error == .connectionReset else { throw .failed(error, path, timeout) }
        }
        let reply: [UInt8]
        do {
            reply = try socket.receiveLine(limit: maxReplyBytes, until: deadline)
        } catch {
            throw .failed(error, path, timeout)
        }
        guard !reply.isEmpty else {
            throw .badResponse(path, "it closed the connection without answering")
        }
        return reply
    }

    /// Error replies are taken whatever their version: their message is all a caller
    /// needs. A result must come in this version.
    private static func decode<R: Codable & Sendable>(
        _ reply: [UInt8], as: R.Type, from path: String
    ) throws(ControlClientError) -> ControlResponse<R> {
        guard let response = try? Timestamp.jsonDecoder().decode(ControlResponse<R>.self, from: Data(reply)) else {
            throw .badResponse(path, "its reply is not a control response of the expected shape")
        }
        if !response.ok, response.error != nil { return response }
        guard response.ok, response.result != nil else {
            throw .badResponse(path, "its reply has neither a result nor an error")
        }
        guard response.version == ControlProtocol.version else {
            throw .badResponse(
                path, "it answered in control protocol version \(response.version), this keyrotd speaks "
                    + "\(ControlProtocol.version) (restart the daemon after an upgrade)")
        }
        return response
    }
}

/// Why the command line got no usable answer from the daemon.
public struct ControlClientError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable {
        /// Nothing listens on the socket (no file, or a stale one).
        case notRunning
        /// The socket's permissions keep this user out.
        case permissionDenied
        /// No complete answer within the timeout.
        case timeout
        /// The daemon answered something that is not a control reply.
        case badResponse
        /// Another system call failed.
        case io
    }

    public var code: Code
    /// A full sentence for the user, naming the socket.
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// sysexits(3): a daemon that is absent, or answers garbage, is unavailable (69);
    /// a refused connection is a permission problem (77); a slow one may pass (75).
    public var exitCode: Int32 {
        switch code {
        case .notRunning, .badResponse, .io: EX_UNAVAILABLE
        case .permissionDenied: EX_NOPERM
        case .timeout: EX_TEMPFAIL
        }
    }
}

extension ControlClientError {
    static func connecting(_ errno: Errno, _ path: String, _ timeout: Duration) -> ControlClientError {
        switch errno {
        case .noSuchFileOrDirectory, .connectionRefused:
            ControlClientError(code: .notRunning, message: "keyrotd is not running (no daemon listening on \(path))")
        case .permissionDenied, .notPermitted:
            ControlClientError(
                code: .permissionDenied,
                message: "permission denied on keyrotd's control socket \(path): run as root or as a member "
                    + "of the socket's group (keyrotd)")
        case .wouldBlock:
            // SO_SNDTIMEO ran out while the daemon's backlog was full.
            failed(.timedOut, path, timeout)
        default:
            failed(errno, path, timeout)
        }
    }

    static func failed(_ errno: Errno, _ path: String, _ timeout: Duration) -> ControlClientError {
        switch errno {
        case .timedOut:
            ControlClientError(code: .timeout, message: "keyrotd did not answer on \(path) within \(ControlWire.span(timeout))")
        case .messageTooLong:
            badResponse(path, "its reply is longer than \(ControlClient.maxReplyBytes) bytes")
        default:
            ControlClientError(code: .io, message: "could not talk to keyrotd on \(path): \(errno.description)")
        }
    }

    static func badResponse(_ path: String, _ problem: String) -> ControlClientError {
        ControlClientError(code: .badResponse, message: "keyrotd on \(path) did not answer as expected: \(problem)")
    }
}

extension UnixSocket {
    /// Sends all of `bytes`, waiting for room; ETIMEDOUT once `deadline` passes.
    func sendAll(_ bytes: [UInt8], until deadline: ContinuousClock.Instant) throws(Errno) {
        var sent = 0
        while sent < bytes.count {
            guard try wait(for: Int16(POLLOUT), until: deadline) else { throw .timedOut }
            sent += try send(bytes[sent...])
        }
    }

    /// Reads up to the first newline (returned without it) or the end of the stream;
    /// ETIMEDOUT once `deadline` passes, EMSGSIZE past `limit` bytes.
    func receiveLine(limit: Int, until deadline: ContinuousClock.Instant) throws(Errno) -> [UInt8] {
        var buffer: [UInt8] = []
        while true {
            guard try wait(for: Int16(POLLIN), until: deadline) else { throw .timedOut }
            let scanned = buffer.count
            guard let count = try receive(into: &buffer, limit: limit + 1 - buffer.count) else { continue }
            if let newline = buffer[scanned...].firstIndex(of: ControlWire.newline) {
                return Array(buffer[..<newline])
            }
            if buffer.count > limit { throw .messageTooLong }
            if count == 0 { return buffer }
        }
    }
}

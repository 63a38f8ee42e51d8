import SystemPackage

/// Why the control socket could not be set up.
///
/// `description` is a full sentence for an operator: what failed, on which path, and
/// what to do. A refused start leaves whatever was at the path as it was.
public struct ControlSocketError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Something other than a socket (a file, a directory, a link) is at the path.
        case notASocket
        /// A system call was refused for lack of permission (EACCES, EPERM).
        case permissionDenied
        /// Another system call failed; `errno` says how.
        case io
    }

    public var code: Code
    public var path: String
    /// The failed system call's error; nil for a refusal (`notASocket`).
    public var errno: Errno?
    public var description: String

    public init(code: Code, path: String, errno: Errno?, description: String) {
        self.code = code
        self.path = path
        self.errno = errno
        self.description = description
    }
}

extension ControlSocketError {
    /// - Parameter what: what is at the path instead, with an article ("a regular file").
    static func notASocket(_ path: String, _ what: String) -> ControlSocketError {
        ControlSocketError(
            code: .notASocket, path: path, errno: nil,
            description: "refusing to replace \(path) with the control socket: it is \(what), not a socket; "
                + "it was left untouched — move it aside or configure another control socket path")
    }

    /// - Parameter action: what was being attempted, as a verb phrase ("bind").
    static func io(_ errno: Errno, _ action: String, _ path: String) -> ControlSocketError {
        let denied = errno == .permissionDenied || errno == .notPermitted
        return ControlSocketError(
            code: denied ? .permissionDenied : .io, path: path, errno: errno,
            description: "could not \(action) the control socket \(path): \(errno.description) — \(hint(for: errno))")
    }

    private static func hint(for errno: Errno) -> String {
        switch errno {
        case .permissionDenied, .notPermitted:
            return "check that keyrotd's user may create files in the socket's directory"
        case .noSuchFileOrDirectory:
            return "create the socket's directory (systemd: RuntimeDirectory=keyrotd)"
        case .fileNameTooLong:
            return "a Unix socket path holds at most 107 bytes; choose a shorter one"
        default:
            return "fix the cause, then start keyrotd again"
        }
    }
}

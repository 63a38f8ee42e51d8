import SystemPackage

/// Why a state-file operation was refused or failed.
///
/// `description` is a full sentence for an operator: what happened, to which path, what
/// was (not) changed, and what to do. Every refusal by `load` leaves the file exactly as
/// it was; the adapter never repairs, rewrites or renames a file it could not trust.
public struct StateFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Not a keyrotd state file, truncated, extended, or the body is not a JSON object.
        case corrupt
        /// Well-formed, but the body's bytes do not match the header's CRC-32.
        case checksumMismatch
        /// Written by a newer keyrotd with a schema version this one does not understand.
        case futureVersion
        /// The file is readable or writable by group or others, or its directory is
        /// writable by them, or either is owned by another user than root or
        /// keyrotd's.
        case unsafePermissions
        /// A symbolic link, directory, FIFO, socket or device instead of a regular file.
        case notRegularFile
        /// Another process (or another lock in this one) holds the lock file.
        case locked
        /// A system call failed; `description` carries the system's error text.
        case io
        /// A system call was refused for lack of permission (EACCES, EPERM): run as
        /// the service's user or root.
        case permissionDenied
        /// The caller passed a body that is not a UTF-8 JSON object, a negative version, a
        /// body too large to be loaded back, a path without a file name, or another state
        /// file's lock. Nothing was changed.
        case invalidArgument
    }

    public var code: Code
    /// The file the error is about: the state file, its directory, or its lock file.
    public var path: String
    public var description: String

    public init(code: Code, path: String, description: String) {
        self.code = code
        self.path = path
        self.description = description
    }
}

extension StateFileError {
    private static let leftUntouched = "it was left untouched"
    private static let restoreOrMoveAside = "restore it from a backup or move it aside to start afresh"

    static func corrupt(_ path: String, _ reason: String) -> StateFileError {
        StateFileError(
            code: .corrupt, path: path,
            description: "state file \(path) is not a valid keyrotd state file (\(reason)); "
                + "\(leftUntouched) — \(restoreOrMoveAside)")
    }

    static func checksumMismatch(_ path: String, expected: UInt32, actual: UInt32, length: Int) -> StateFileError {
        StateFileError(
            code: .checksumMismatch, path: path,
            description: "state file \(path) fails its checksum (header says crc32 \(CRC32.hex(expected)), "
                + "the \(length) body bytes give \(CRC32.hex(actual))); \(leftUntouched) — \(restoreOrMoveAside)")
    }

    static func futureVersion(_ path: String, version: Int, supported: Int) -> StateFileError {
        StateFileError(
            code: .futureVersion, path: path,
            description: "state file \(path) has schema version \(version), but this keyrotd understands "
                + "at most version \(supported); \(leftUntouched) — run the newer keyrotd that wrote it, "
                + "or restore a backup written by this version")
    }

    static func unsafeFilePermissions(_ path: String, _ permissions: FilePermissions) -> StateFileError {
        StateFileError(
            code: .unsafePermissions, path: path,
            description: "state file \(path) has mode \(octal(permissions)), so group or others can read "
                + "or change it; \(leftUntouched) — check who may have read or altered it, then "
                + "chmod 600 \(path)")
    }

    static func unsafeDirectoryPermissions(_ path: String, _ permissions: FilePermissions) -> StateFileError {
        StateFileError(
            code: .unsafePermissions, path: path,
            description: "state directory \(path) has mode \(octal(permissions)), so group or others "
                + "could replace the state file; its mode was left as it is — chmod 700 \(path) "
                + "(or go-w) and start again")
    }

    /// The state file, or its directory, belongs to another user than root or keyrotd's.
    static func foreignOwner(_ path: String, owner: UInt32, isDirectory: Bool) -> StateFileError {
        let (what, risk) = isDirectory
            ? ("state directory", "could replace the state file; it was left as it is")
            : ("state file", "can read or change it; \(leftUntouched)")
        return StateFileError(
            code: .unsafePermissions, path: path,
            description: "\(what) \(path) is owned by \(PathTrust.describe(owner)), neither root nor keyrotd's "
                + "user, so its owner \(risk) — check who may have read or altered it, then chown it to "
                + "keyrotd's user and start again")
    }

    static func notRegularFile(_ path: String, _ what: String) -> StateFileError {
        StateFileError(
            code: .notRegularFile, path: path,
            description: "state file \(path) is \(what), not a regular file; \(leftUntouched) — "
                + "replace it with the regular file keyrotd wrote, or move it aside to start afresh")
    }

    static func locked(_ lockPath: String) -> StateFileError {
        StateFileError(
            code: .locked, path: lockPath,
            description: "lock file \(lockPath) is held by another process, most likely another keyrotd "
                + "using the same state file — stop that one first, or give this one its own state file")
    }

    /// - Parameter action: the refused operation as a verb ("save").
    static func invalidArgument(
        _ path: String, _ action: String, _ reason: String, remedy: String = "this is a bug in the caller"
    ) -> StateFileError {
        StateFileError(
            code: .invalidArgument, path: path,
            description: "refusing to \(action) state file \(path): \(reason); nothing was changed — \(remedy)")
    }

    /// - Parameters:
    ///   - action: what was being attempted, as a verb phrase ("create the temporary file").
    ///   - consequence: what that failure means for the state, for the operator.
    static func io(_ errno: Errno, _ action: String, _ path: String, _ consequence: String) -> StateFileError {
        StateFileError(
            code: errno == .permissionDenied || errno == .notPermitted ? .permissionDenied : .io, path: path,
            description: "could not \(action) \(path): \(errno.description); \(consequence) — \(hint(for: errno))")
    }

    private static func hint(for errno: Errno) -> String {
        switch errno {
        case .noSpace, .diskQuotaExceeded:
            return "free space on that file system (or raise the quota), then retry"
        case .permissionDenied, .notPermitted:
            return "check that keyrotd's user owns the state directory and may write to it"
        case .readOnlyFileSystem:
            return "the file system is read-only; remount it read-write, then retry"
        case .ioError:
            return "the storage reported an error; check the kernel log (dmesg) and the disk before retrying"
        default:
            return "fix the cause, then retry"
        }
    }

    private static func octal(_ permissions: FilePermissions) -> String {
        let digits = String(permissions.rawValue & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

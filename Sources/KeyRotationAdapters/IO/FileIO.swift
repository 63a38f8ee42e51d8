import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Small, EINTR-safe file helpers shared by the adapters.
enum FileIO {
    struct Status {
        var mode: UInt32
        var isRegularFile: Bool
        var isDirectory: Bool
        var isSymlink: Bool
        var owner: UInt32
    }

    /// lstat by default: a symlink is reported as such; `following` stats its target.
    static func status(path: String, following: Bool = false) -> Status? {
        var info = stat()
        guard (following ? stat(path, &info) : lstat(path, &info)) == 0 else { return nil }
        let type = info.st_mode & S_IFMT
        return Status(
            mode: info.st_mode & 0o7777, isRegularFile: type == S_IFREG, isDirectory: type == S_IFDIR,
            isSymlink: type == S_IFLNK, owner: info.st_uid)
    }

    /// Reads a whole (small) file; refuses files larger than `limit`. Throws `Errno`
    /// (ELOOP for a symbolic link when `followingLinks` is false).
    static func readAll(path: String, limit: Int, followingLinks: Bool = true) throws -> [UInt8] {
        let fd = try FileDescriptor.open(
            FilePath(path), .readOnly, options: followingLinks ? [.closeOnExec] : [.closeOnExec, .noFollow])
        return try fd.closeAfter {
            var result: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let count = try buffer.withUnsafeMutableBytes { try fd.read(into: $0) }
                if count == 0 { break }
                result.append(contentsOf: buffer[..<count])
                if result.count > limit { throw Errno.fileTooLarge }
            }
            return result
        }
    }
}

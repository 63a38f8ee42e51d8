import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A hook's stdin: a pipe filled completely and closed for writing before the
/// hook starts, so the hook reads its input and then EOF, and keyrotd never
/// writes to a pipe whose reader may be gone (that would raise SIGPIPE in the
/// daemon, which does not ignore it) nor waits on a hook that does not read.
///
/// The contents must fit in the pipe buffer (64 KiB on Linux by default); a
/// secret and a newline always do. Both ends are close-on-exec so that no other
/// child inherits them; the spawn duplicates the read end onto the hook's fd 0.
enum HookStandardInput {
    /// The read end, owned by the caller. Throws `Errno`; `.wouldBlock` when the
    /// contents do not fit in the pipe.
    static func pipe(containing contents: [UInt8]) throws(Errno) -> FileDescriptor {
        var ends: [CInt] = [-1, -1]
        let created = ends.withUnsafeMutableBufferPointer { buffer -> CInt in
            guard let base = buffer.baseAddress else { return -1 }
            return pipeClosedOnExec(base)
        }
        guard created == 0 else { throw Errno(rawValue: errno) }
        let readEnd = FileDescriptor(rawValue: ends[0])
        let writeEnd = FileDescriptor(rawValue: ends[1])
        do throws(Errno) {
            defer { try? writeEnd.close() }
            // Non-blocking, so contents larger than the pipe fail instead of hanging.
            guard fcntl(writeEnd.rawValue, F_SETFL, O_NONBLOCK) == 0 else { throw Errno(rawValue: errno) }
            if !contents.isEmpty {
                _ = try Syscall.typed { try contents.withUnsafeBytes { try writeEnd.writeAll($0) } }
            }
            return readEnd
        } catch {
            try? readEnd.close()
            throw error
        }
    }

    /// pipe2(2) with O_CLOEXEC: both ends are close-on-exec from the start, so a
    /// process spawned by another thread at that moment cannot inherit them. The
    /// Glibc module does not export pipe2 (it needs _GNU_SOURCE), so it is looked
    /// up once by name, as swift-subprocess does for its own GNU extensions.
    private static func pipeClosedOnExec(_ ends: UnsafeMutablePointer<CInt>) -> CInt {
        guard let pipe2 = pipe2Function else {
            errno = ENOSYS
            return -1
        }
        return pipe2(ends, O_CLOEXEC)
    }

    private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<CInt>, CInt) -> CInt
    private static let pipe2Function: Pipe2? = dlsym(nil, "pipe2").map { unsafeBitCast($0, to: Pipe2.self) }
}

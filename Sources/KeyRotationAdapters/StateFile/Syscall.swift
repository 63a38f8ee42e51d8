#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// The adapter's one edge to C: the calls SystemPackage lacks, each turned into a Swift
/// function that throws `Errno`. Nothing here escapes the adapter's internal API.
enum Syscall {
    /// Repeats `body` while it fails with EINTR: the only place where the adapter
    /// handles interruption. Every SystemPackage call made through it passes
    /// `retryOnInterrupt: false` so that retries are not layered.
    ///
    /// Deliberately not used for close(2), since Linux frees the descriptor even when
    /// close is interrupted, nor for fsync(2), since a failed fsync may already have
    /// dropped the dirty pages and a retry could report a success that is not one.
    static func retryingOnInterrupt<T>(_ body: () throws(Errno) -> T) throws(Errno) -> T {
        while true {
            do throws(Errno) {
                return try body()
            } catch {
                if error != .interrupted { throw error }
            }
        }
    }

    private static func check(_ result: CInt) throws(Errno) {
        if result == -1 { throw Errno(rawValue: errno) }
    }

    /// Attempted once; see `retryingOnInterrupt` for why it is never repeated.
    static func synchronize(_ descriptor: FileDescriptor) throws(Errno) {
        try check(fsync(descriptor.rawValue))
    }

    static func setPermissions(_ descriptor: FileDescriptor, _ permissions: FilePermissions) throws(Errno) {
        try retryingOnInterrupt { () throws(Errno) in
            try check(fchmod(descriptor.rawValue, permissions.rawValue))
        }
    }

    /// For files only reachable by path, such as a bound socket (fchmod on the socket's
    /// descriptor would not change the file).
    static func setPermissions(ofPath path: String, _ permissions: FilePermissions) throws(Errno) {
        try retryingOnInterrupt { () throws(Errno) in
            try check(chmod(path, permissions.rawValue))
        }
    }

    /// lstat(2): the entry itself, not what a symbolic link points to.
    static func entryStatus(_ path: String) throws(Errno) -> stat {
        var status = stat()
        try retryingOnInterrupt { () throws(Errno) in
            try check(lstat(path, &status))
        }
        return status
    }

    /// Fails with `.wouldBlock` when another open file description holds the lock.
    static func lockExclusiveWithoutWaiting(_ descriptor: FileDescriptor) throws(Errno) {
        try retryingOnInterrupt { () throws(Errno) in
            try check(flock(descriptor.rawValue, LOCK_EX | LOCK_NB))
        }
    }

    static func renameItem(from source: String, to destination: String) throws(Errno) {
        try retryingOnInterrupt { () throws(Errno) in
            try check(rename(source, destination))
        }
    }

    /// The new directory's mode is `permissions` minus the umask; callers fix it up.
    static func makeDirectory(_ path: String, _ permissions: FilePermissions) throws(Errno) {
        try retryingOnInterrupt { () throws(Errno) in
            try check(mkdir(path, permissions.rawValue))
        }
    }

    static func removeFile(_ path: String) throws(Errno) {
        try retryingOnInterrupt { () throws(Errno) in
            try check(unlink(path))
        }
    }

    static func removeFile(named name: String, in directory: FileDescriptor) throws(Errno) {
        try retryingOnInterrupt { () throws(Errno) in
            try check(unlinkat(directory.rawValue, name, 0))
        }
    }

    /// Names in the open directory, without "." and ".." and without names that are
    /// not valid UTF-8 (they could not be named again to unlink them). The descriptor
    /// stays open and owned by the caller.
    static func entryNames(of directory: FileDescriptor) throws(Errno) -> [String] {
        let listing = try retryingOnInterrupt { () throws(Errno) in
            try typed { try directory.duplicate(retryOnInterrupt: false) }
        }
        guard let stream = fdopendir(listing.rawValue) else {
            let failure = Errno(rawValue: errno)
            try? listing.close()
            throw failure
        }
        defer { closedir(stream) }
        rewinddir(stream)
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw Errno(rawValue: errno) }
                return names
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(validating: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let name, name != ".", name != ".." { names.append(name) }
        }
    }
}

extension Syscall {
    /// SystemPackage's FileDescriptor methods are declared `throws` but only ever throw
    /// `Errno`; this restores the type so that callers can match on it.
    static func typed<T>(_ body: () throws -> T) throws(Errno) -> T {
        do {
            return try body()
        } catch let error as Errno {
            throw error
        } catch {
            throw Errno.ioError
        }
    }
}

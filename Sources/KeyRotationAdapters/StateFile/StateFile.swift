import Foundation
import SystemPackage

/// Crash-safe storage for one document's bytes: keyrotd's state.
///
/// The caller owns the content (it encodes its own JSON object and names its schema
/// version); this type owns durability and trust:
/// - a save either fully replaces the file or leaves the previous one as it was, even if
///   the process is killed or the machine loses power at any instant (temporary file in
///   the same directory, fsync, rename, fsync of the directory);
/// - a load returns exactly the bytes last saved, or refuses — it never repairs,
///   rewrites, renames or deletes a file it cannot trust, so an operator can inspect it;
/// - the file and any directory this type creates are private to the owner (0600, 0700),
///   whatever the process umask.
///
/// All methods block on file-system I/O; call them off latency-sensitive executors.
/// Only one process at a time may save or clean up: hold `lock()` for as long as the
/// state is in use.
public struct StateFile: Sendable {
    public var path: String
    var io: StateFileIO = .system

    public init(path: String) {
        self.path = path
    }

    /// "<path>.lock", the file `lock()` locks.
    public var lockPath: String { path + ".lock" }

    // MARK: Directory

    /// Creates the state file's directory, and missing ancestors, with mode 0700
    /// whatever the umask, and makes the new entries durable.
    ///
    /// An existing directory's mode is left alone, but one writable by group or others, or
    /// owned by anyone but root or this process's user, is refused with
    /// `.unsafePermissions`: whoever can write there (its owner can chmod it) can
    /// replace the state.
    public func prepareDirectory() throws(StateFileError) {
        let location = try location()
        try ensureDirectory(location.directory, isStateDirectory: true)
    }

    private func ensureDirectory(_ directory: String, isStateDirectory: Bool) throws(StateFileError) {
        let existing: Stat?
        do throws(Errno) {
            existing = try Syscall.retryingOnInterrupt { () throws(Errno) in
                try FilePath(directory).stat(retryOnInterrupt: false)
            }
        } catch {
            guard error == .noSuchFileOrDirectory else {
                throw StateFileError.io(error, "examine the directory", directory, "nothing was created")
            }
            existing = nil
        }
        if let existing {
            guard existing.type == .directory else {
                throw StateFileError.io(.notDirectory, "use the directory", directory, "nothing was created")
            }
            if isStateDirectory, !PathTrust.isTrusted(existing.userID.rawValue) {
                throw StateFileError.foreignOwner(directory, owner: existing.userID.rawValue, isDirectory: true)
            }
            if isStateDirectory, !existing.permissions.isDisjoint(with: [.groupWrite, .otherWrite]) {
                throw StateFileError.unsafeDirectoryPermissions(directory, existing.permissions)
            }
            return
        }

        let parent = FilePath(directory).removingLastComponent()
        if !parent.isEmpty, parent != FilePath(directory) {
            try ensureDirectory(parent.string, isStateDirectory: false)
        }
        do throws(Errno) {
            try Syscall.makeDirectory(directory, .ownerReadWriteExecute)
        } catch {
            if error == .fileExists {
                return try ensureDirectory(directory, isStateDirectory: isStateDirectory)
            }
            throw StateFileError.io(error, "create the directory", directory, "nothing was created")
        }
        do throws(Errno) {
            let descriptor = try open(
                directory, .readOnly, options: [.directory, .noFollow, .closeOnExec])
            defer { try? descriptor.close() }
            try Syscall.setPermissions(descriptor, .ownerReadWriteExecute)
            try synchronizeDirectory(parent.isEmpty ? "." : parent.string)
        } catch {
            throw StateFileError.io(
                error, "set up the new directory", directory,
                "the directory exists but may have the wrong mode or not survive a power failure")
        }
    }

    // MARK: Lock

    /// Takes an exclusive, non-blocking lock on `lockPath`, creating it with mode 0600.
    ///
    /// Fails with `.locked` when another process holds it, and also when another
    /// `StateFileLock` of this process does: every call opens its own file description,
    /// and flock locks on distinct descriptions conflict.
    public func lock() throws(StateFileError) -> StateFileLock {
        let lockPath = lockPath
        let descriptor: FileDescriptor
        do throws(Errno) {
            descriptor = try open(
                lockPath, .readWrite, options: [.create, .noFollow, .closeOnExec, .nonBlocking],
                permissions: .ownerReadWrite)
        } catch {
            if error == .tooManySymbolicLinkLevels {
                throw StateFileError.notRegularFile(lockPath, "a symbolic link (lock file)")
            }
            throw StateFileError.io(error, "open the lock file", lockPath, "the state was not touched")
        }
        let status: Stat
        do throws(Errno) {
            status = try Syscall.retryingOnInterrupt { () throws(Errno) in
                try descriptor.stat(retryOnInterrupt: false)
            }
        } catch {
            try? descriptor.close()
            throw StateFileError.io(error, "examine the lock file", lockPath, "the state was not touched")
        }
        guard status.type == .regular else {
            try? descriptor.close()
            throw StateFileError.notRegularFile(lockPath, "\(Self.kind(of: status.type)) (lock file)")
        }
        do throws(Errno) {
            try Syscall.setPermissions(descriptor, .ownerReadWrite)
            try Syscall.lockExclusiveWithoutWaiting(descriptor)
        } catch {
            try? descriptor.close()
            if error == .wouldBlock || error == .resourceTemporarilyUnavailable {
                throw StateFileError.locked(lockPath)
            }
            throw StateFileError.io(error, "lock", lockPath, "the state was not touched")
        }
        return StateFileLock(path: lockPath, statePath: path, descriptor: descriptor)
    }

    // MARK: Leftovers

    /// Removes temporary files ("<name>.tmp-*" beside the state file, regular files or
    /// links) that an interrupted save left behind, and returns their names, sorted.
    /// Other files, and entries of other kinds, are left alone.
    ///
    /// Takes the lock as proof that no save of this state is in progress: another
    /// process's temporary file would otherwise be deleted under it.
    public func removeLeftoverTemporaries(
        holding lock: borrowing StateFileLock
    ) throws(StateFileError) -> [String] {
        guard lock.statePath == path else {
            throw StateFileError.invalidArgument(
                path, "clean up", "the lock passed guards \(lock.statePath), not this state file")
        }
        let location = try location()
        let prefix = Array((location.name + ".tmp-").utf8)
        var removed: [String] = []
        do throws(Errno) {
            let directory = try open(location.directory, .readOnly, options: [.directory, .closeOnExec])
            defer { try? directory.close() }
            for name in try Syscall.entryNames(of: directory).sorted()
            where name.utf8.starts(with: prefix) {
                let status: Stat
                do throws(Errno) {
                    status = try Syscall.retryingOnInterrupt { () throws(Errno) in
                        try FilePath(name).stat(
                            relativeTo: directory, flags: .symlinkNoFollow, retryOnInterrupt: false)
                    }
                    guard status.type == .regular || status.type == .symbolicLink else { continue }
                    try Syscall.removeFile(named: name, in: directory)
                } catch {
                    if error == .noSuchFileOrDirectory { continue }
                    throw error
                }
                removed.append(name)
            }
        } catch {
            throw StateFileError.io(
                error, "remove left-over temporary files in", location.directory,
                "the state file was not touched; \(removed.count) were removed before the failure")
        }
        return removed
    }

    // MARK: Load

    /// Reads and verifies the state, or returns nil when the file does not exist yet.
    ///
    /// Refuses, leaving the file's bytes, mode and modification time as they were: a path
    /// that is not a regular file (symbolic links are not followed), a file owned by
    /// anyone but root or this process's user, a file readable or writable by group or
    /// others, a malformed envelope, a length or checksum mismatch,
    /// a version above `maxSupportedVersion`, or a body that is not a JSON object. The checks run in that order, so a future file that is intact is
    /// reported as `.futureVersion` rather than judged by today's schema.
    ///
    /// A caller that decodes the body at once passes `checkingJSON: false`: its decoder
    /// refuses anything but its JSON object, and the state is parsed once instead of twice
    /// (the check alone is a full parse: about 30 ms for 1,000 keys).
    public func load(maxSupportedVersion: Int, checkingJSON: Bool = true) throws(StateFileError) -> (version: Int, body: [UInt8])? {
        _ = try location()
        let descriptor: FileDescriptor
        do throws(Errno) {
            descriptor = try open(path, .readOnly, options: [.noFollow, .closeOnExec, .nonBlocking])
        } catch {
            switch error {
            case .noSuchFileOrDirectory:
                return nil
            case .tooManySymbolicLinkLevels:
                throw StateFileError.notRegularFile(path, "a symbolic link")
            case .noSuchAddressOrDevice:
                throw StateFileError.notRegularFile(path, "a socket or device")
            default:
                throw StateFileError.io(error, "open the state file", path, "it was left untouched")
            }
        }
        defer { try? descriptor.close() }

        let status: Stat
        do throws(Errno) {
            status = try Syscall.retryingOnInterrupt { () throws(Errno) in
                try descriptor.stat(retryOnInterrupt: false)
            }
        } catch {
            throw StateFileError.io(error, "examine the state file", path, "it was left untouched")
        }
        guard status.type == .regular else {
            throw StateFileError.notRegularFile(path, Self.kind(of: status.type))
        }
        guard PathTrust.isTrusted(status.userID.rawValue) else {
            throw StateFileError.foreignOwner(path, owner: status.userID.rawValue, isDirectory: false)
        }
        guard status.permissions.isDisjoint(with: [.groupReadWrite, .otherReadWrite]) else {
            throw StateFileError.unsafeFilePermissions(path, status.permissions)
        }
        guard status.size <= StateFileFormat.maximumFileSize else {
            throw StateFileError.corrupt(
                path, "it is \(status.size) bytes, more than the \(StateFileFormat.maximumFileSize) "
                    + "a state file may have")
        }
        let file: [UInt8]
        do throws(Errno) {
            file = try readAll(descriptor, sizeHint: Int(status.size))
        } catch {
            throw StateFileError.io(error, "read the state file", path, "it was left untouched")
        }
        guard file.count <= StateFileFormat.maximumFileSize else {
            throw StateFileError.corrupt(path, "it grew past \(StateFileFormat.maximumFileSize) bytes while being read")
        }

        let header: StateFileFormat.Header
        let body: [UInt8]
        switch StateFileFormat.decode(file) {
        case .success(let decoded):
            (header, body) = decoded
        case .failure(.corrupt(let reason)):
            throw StateFileError.corrupt(path, reason)
        case .failure(.checksumMismatch(let expected, let actual, let length)):
            throw StateFileError.checksumMismatch(path, expected: expected, actual: actual, length: length)
        }
        guard header.version <= maxSupportedVersion else {
            throw StateFileError.futureVersion(path, version: header.version, supported: maxSupportedVersion)
        }
        guard !checkingJSON || StateFileFormat.isJSONObject(body) else {
            throw StateFileError.corrupt(path, "its checksum matches but its state is not a JSON object")
        }
        return (header.version, body)
    }

    /// Reads to end of file, stopping once more than the maximum file size has been read.
    private func readAll(_ descriptor: FileDescriptor, sizeHint: Int) throws(Errno) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(sizeHint)
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count <= StateFileFormat.maximumFileSize {
            let count = try chunk.withUnsafeMutableBytes { buffer in
                Result { () throws(Errno) in
                    try Syscall.retryingOnInterrupt { () throws(Errno) in
                        try Syscall.typed { try descriptor.read(into: buffer, retryOnInterrupt: false) }
                    }
                }
            }.get()
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<count])
        }
        return bytes
    }

    // MARK: Save

    /// Atomically replaces the state with `body`, a UTF-8 JSON object, at schema `version`.
    ///
    /// Writes "<name>.tmp-<pid>-<random>" in the same directory (created exclusively,
    /// not following links, mode 0600 whatever the umask), writes every byte, fsyncs it,
    /// closes it, renames it over the state file and fsyncs the directory. Until the
    /// rename, any failure removes the temporary file and leaves the previous state as it
    /// was. A failed fsync is never retried: the write is abandoned, because the kernel
    /// may already have discarded the unwritten pages. If only the final directory fsync
    /// fails, the new state is in place but its durability is unknown; the error says so.
    ///
    /// Call only while holding `lock()`.
    public func save(body: [UInt8], version: Int) throws(StateFileError) {
        guard version >= 0 else {
            throw StateFileError.invalidArgument(path, "save", "version \(version) is negative")
        }
        guard StateFileFormat.isFramedAsJSONObject(body) else {
            throw StateFileError.invalidArgument(path, "save", "the body is not a UTF-8 JSON object")
        }
        let file = StateFileFormat.encode(body: body, version: version)
        guard file.count <= StateFileFormat.maximumFileSize else {
            throw StateFileError.invalidArgument(
                path, "save",
                "the file would be \(file.count) bytes, more than the \(StateFileFormat.maximumFileSize) load accepts")
        }
        let location = try location()
        let randomPart = String(UInt64.random(in: .min ... .max), radix: 16)
        let temporaryName = "\(location.name).tmp-\(ProcessInfo.processInfo.processIdentifier)-\(randomPart)"
        let temporaryPath = FilePath(location.directory).appending(temporaryName).string
        let untouched = "the previous state file was left as it was and the temporary file removed"

        let descriptor: FileDescriptor
        do throws(Errno) {
            descriptor = try open(
                temporaryPath, .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec, .noFollow],
                permissions: .ownerReadWrite)
        } catch {
            throw StateFileError.io(
                error, "create the temporary file \(temporaryName) for", path,
                "the previous state file was left as it was")
        }

        var action = "set the mode of"
        do throws(Errno) {
            try Syscall.setPermissions(descriptor, .ownerReadWrite)
            action = "write"
            try io.writeAll(descriptor, file)
            action = "flush (fsync)"
            try io.synchronize(descriptor)
        } catch {
            try? descriptor.close()
            try? Syscall.removeFile(temporaryPath)
            throw StateFileError.io(error, "\(action) the temporary file \(temporaryName) for", path, untouched)
        }
        do throws(Errno) {
            try Syscall.typed { try descriptor.close() }
        } catch {
            try? Syscall.removeFile(temporaryPath)
            throw StateFileError.io(error, "close the temporary file \(temporaryName) for", path, untouched)
        }
        do throws(Errno) {
            try Syscall.renameItem(from: temporaryPath, to: path)
        } catch {
            try? Syscall.removeFile(temporaryPath)
            throw StateFileError.io(error, "rename the temporary file \(temporaryName) over", path, untouched)
        }
        do throws(Errno) {
            try synchronizeDirectory(location.directory)
        } catch {
            throw StateFileError.io(
                error, "flush (fsync) the directory", location.directory,
                "the new state is in place but may not survive a power failure")
        }
    }

    // MARK: Helpers

    private func synchronizeDirectory(_ directory: String) throws(Errno) {
        let descriptor = try open(directory, .readOnly, options: [.directory, .closeOnExec])
        defer { try? descriptor.close() }
        try io.synchronize(descriptor)
    }

    private func open(
        _ path: String, _ mode: FileDescriptor.AccessMode, options: FileDescriptor.OpenOptions,
        permissions: FilePermissions? = nil
    ) throws(Errno) -> FileDescriptor {
        try Syscall.retryingOnInterrupt { () throws(Errno) in
            try Syscall.typed {
                try FileDescriptor.open(
                    FilePath(path), mode, options: options, permissions: permissions,
                    retryOnInterrupt: false)
            }
        }
    }

    /// The directory ("." for a bare name) and the file name; a path without a file
    /// name ("", "/", "dir/..") cannot hold a state file.
    private func location() throws(StateFileError) -> (directory: String, name: String) {
        let filePath = FilePath(path)
        guard let last = filePath.lastComponent, last.kind == .regular else {
            throw StateFileError.invalidArgument(
                path, "use", "the path does not end in a file name",
                remedy: "configure the path of a file, such as /var/lib/keyrotd/state.json")
        }
        let directory = filePath.removingLastComponent()
        return (directory.isEmpty ? "." : directory.string, last.string)
    }

    private static func kind(of type: FileType) -> String {
        switch type {
        case .directory: "a directory"
        case .symbolicLink: "a symbolic link"
        case .fifo: "a FIFO"
        case .socket: "a socket"
        case .characterSpecial, .blockSpecial: "a device"
        default: "a special file"
        }
    }
}

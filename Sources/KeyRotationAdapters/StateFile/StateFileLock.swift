import SystemPackage

/// Proof that this process holds the exclusive lock of one state file.
///
/// The lock is a flock(2) on "<state path>.lock", tied to the open file description
/// this value owns: it is released when the value is released or goes out of scope,
/// and by the kernel when the process dies, so a crash never leaves a stale lock. The
/// descriptor is close-on-exec, so child processes do not inherit the lock. The lock
/// file itself is never deleted: unlinking it would let two processes lock two
/// different files of the same name.
///
/// Non-copyable so that exactly one owner can release it.
public struct StateFileLock: ~Copyable, Sendable {
    /// The lock file's path.
    public let path: String
    /// The state file this lock guards.
    public let statePath: String
    private let descriptor: FileDescriptor

    init(path: String, statePath: String, descriptor: FileDescriptor) {
        self.path = path
        self.statePath = statePath
        self.descriptor = descriptor
    }

    /// Releases the lock now rather than at the end of the owner's scope.
    public consuming func release() {}

    deinit {
        try? descriptor.close()
    }
}

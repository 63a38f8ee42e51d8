import CUnixSocket
import Glibc
import SystemPackage

/// An AF_UNIX stream socket: the C calls the control socket needs, each turned into a
/// Swift function that throws `Errno` and retries EINTR through `Syscall`.
///
/// Every socket is close-on-exec from birth (hooks are spawned from other threads at
/// any moment), and nothing here raises SIGPIPE: sends pass MSG_NOSIGNAL and report
/// EPIPE instead. Sends and receives never block (MSG_DONTWAIT); callers wait for
/// readiness with `wait(for:until:)` or `Syscall.poll`, against a deadline.
struct UnixSocket: Sendable {
    let descriptor: FileDescriptor

    /// A new stream socket. A blocking one only blocks in `connect`, for as long as
    /// `setSendTimeout` allows.
    static func stream(blocking: Bool) throws(Errno) -> UnixSocket {
        var type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        if !blocking { type |= Int32(SOCK_NONBLOCK.rawValue) }
        let raw = socket(AF_UNIX, type, 0)
        if raw == -1 { throw Errno(rawValue: errno) }
        return UnixSocket(descriptor: FileDescriptor(rawValue: raw))
    }

    /// A connected non-blocking pair: one thread wakes another out of poll(2) by
    /// writing a byte to one end.
    static func pair() throws(Errno) -> (UnixSocket, UnixSocket) {
        var ends: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        if socketpair(AF_UNIX, type, 0, &ends) == -1 { throw Errno(rawValue: errno) }
        return (UnixSocket(descriptor: FileDescriptor(rawValue: ends[0])),
                UnixSocket(descriptor: FileDescriptor(rawValue: ends[1])))
    }

    func close() {
        try? descriptor.close()
    }

    func bind(to path: String) throws(Errno) {
        try Self.withAddress(path) { (address, length) throws(Errno) in
            try Syscall.retryingOnInterrupt { () throws(Errno) in
                try Self.check(Glibc.bind(descriptor.rawValue, address, length))
            }
        }
    }

    func listen(backlog: Int32 = SOMAXCONN) throws(Errno) {
        try Self.check(Glibc.listen(descriptor.rawValue, backlog))
    }

    /// The next pending connection, non-blocking and close-on-exec; nil when none is waiting.
    func accept() throws(Errno) -> UnixSocket? {
        do throws(Errno) {
            return try Syscall.retryingOnInterrupt { () throws(Errno) in
                let raw = keyrotd_accept_cloexec_nonblocking(descriptor.rawValue)
                if raw == -1 { throw Errno(rawValue: errno) }
                return UnixSocket(descriptor: FileDescriptor(rawValue: raw))
            }
        } catch {
            // ECONNABORTED: that client gave up while queued; the next one may be there.
            if error == .wouldBlock { return nil }
            if error == .connectionAbort { return try accept() }
            throw error
        }
    }

    func connect(to path: String) throws(Errno) {
        try Self.withAddress(path) { (address, length) throws(Errno) in
            try Syscall.retryingOnInterrupt { () throws(Errno) in
                try Self.check(Glibc.connect(descriptor.rawValue, address, length))
            }
        }
    }

    /// Bounds a blocking `connect`, which waits while the listener's backlog is full.
    /// At least a microsecond: zero would mean no bound at all.
    func setSendTimeout(_ timeout: Duration) throws(Errno) {
        let (seconds, attoseconds) = max(timeout, .microseconds(1)).components
        var value = timeval(tv_sec: Int(clamping: seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        try Self.check(setsockopt(descriptor.rawValue, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size)))
    }

    /// Who is connected, as the kernel recorded it at connect(2): pid, uid, gid.
    func peerCredentials() throws(Errno) -> (pid: Int32, uid: UInt32, gid: UInt32) {
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
        try Self.check(keyrotd_peer_credentials(descriptor.rawValue, &pid, &uid, &gid))
        return (pid, uid, gid)
    }

    /// The peer's supplementary groups at connect(2) (SO_PEERGROUPS, Linux 4.13+;
    /// ENOPROTOOPT before).
    func peerGroups() throws(Errno) -> [UInt32] {
        var groups = [gid_t](repeating: 0, count: 64)
        while true {
            var length = socklen_t(groups.count * MemoryLayout<gid_t>.size)
            if getsockopt(descriptor.rawValue, SOL_SOCKET, SO_PEERGROUPS, &groups, &length) == 0 {
                return Array(groups.prefix(Int(length) / MemoryLayout<gid_t>.size))
            }
            // ERANGE: the kernel has put the size it needs in `length`.
            guard errno == ERANGE, Int(length) > groups.count * MemoryLayout<gid_t>.size else {
                throw Errno(rawValue: errno)
            }
            groups = [gid_t](repeating: 0, count: Int(length) / MemoryLayout<gid_t>.size)
        }
    }

    /// Sends what the socket takes now: the number of bytes sent, 0 when it is full.
    func send(_ bytes: ArraySlice<UInt8>) throws(Errno) -> Int {
        do throws(Errno) {
            return try Syscall.retryingOnInterrupt { () throws(Errno) in
                let sent = bytes.withUnsafeBytes {
                    Glibc.send(descriptor.rawValue, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                }
                if sent == -1 { throw Errno(rawValue: errno) }
                return sent
            }
        } catch {
            if error == .wouldBlock { return 0 }
            throw error
        }
    }

    /// Appends what has arrived, at most `limit` bytes, to `buffer`: the number of
    /// bytes appended, 0 at end of stream, nil when nothing is there yet.
    func receive(into buffer: inout [UInt8], limit: Int) throws(Errno) -> Int? {
        let capacity = max(1, min(limit, 16_384))
        let received = try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) {
            (chunk) throws(Errno) -> Int? in
            do throws(Errno) {
                let count = try Syscall.retryingOnInterrupt { () throws(Errno) in
                    let count = recv(descriptor.rawValue, chunk.baseAddress, capacity, Int32(MSG_DONTWAIT))
                    if count == -1 { throw Errno(rawValue: errno) }
                    return count
                }
                buffer.append(contentsOf: chunk.prefix(count))
                return count
            } catch {
                if error == .wouldBlock { return nil }
                throw error
            }
        }
        return received
    }

    /// Waits until the socket is ready for `events` (POLLIN, POLLOUT; hang-up and
    /// errors count as ready) or `deadline` passes: false on timeout.
    func wait(for events: Int16, until deadline: ContinuousClock.Instant) throws(Errno) -> Bool {
        var entries = [pollfd(fd: descriptor.rawValue, events: events, revents: 0)]
        return try Syscall.poll(&entries, until: deadline) > 0
    }

    private static func check(_ result: Int32) throws(Errno) {
        if result == -1 { throw Errno(rawValue: errno) }
    }

    /// `path` as a sockaddr_un. ENAMETOOLONG when it does not fit the 107 bytes
    /// sun_path holds with its terminating NUL.
    private static func withAddress<T>(
        _ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws(Errno) -> T
    ) throws(Errno) -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, !bytes.contains(0) else { throw Errno.invalidArgument }
        guard bytes.count < capacity else { throw Errno.fileNameTooLong }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + 1)
        return try withUnsafePointer(to: &address) { (pointer) throws(Errno) -> T in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (raw) throws(Errno) -> T in
                try body(raw, length)
            }
        }
    }
}

extension Syscall {
    /// poll(2) until one of `entries` is ready or `deadline` passes (nil: no deadline);
    /// the number of ready entries, 0 on timeout. The timeout is worked out again
    /// after an interruption, so signals never stretch the deadline.
    static func poll(_ entries: inout [pollfd], until deadline: ContinuousClock.Instant?) throws(Errno) -> Int {
        try retryingOnInterrupt { () throws(Errno) in
            let timeout = deadline.map { milliseconds(until: $0) } ?? -1
            let ready = Glibc.poll(&entries, nfds_t(entries.count), timeout)
            if ready == -1 { throw Errno(rawValue: errno) }
            return Int(ready)
        }
    }

    /// Milliseconds from now to `deadline`, rounded up (poll must not wake before the
    /// deadline and then find it not yet passed), 0 once it has passed.
    private static func milliseconds(until deadline: ContinuousClock.Instant) -> Int32 {
        let (seconds, attoseconds) = (deadline - .now).components
        guard seconds >= 0, seconds != 0 || attoseconds > 0 else { return 0 }
        let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: milliseconds)
    }
}

import Foundation
import Glibc
import Testing
@testable import KeyRotationAdapters

/// sd_notify against a socket the test binds: the exact datagrams systemd would read.
/// Serialized, because the notifier reads NOTIFY_SOCKET / WATCHDOG_* from the process
/// environment; every test restores the variables it set.
@Suite(.serialized) struct SystemdNotifierTests {
    @Test func readySendsReadyAndOneStatusLine() throws {
        try withNotifySocket { socket in
            let notifier = SystemdNotifier()
            #expect(notifier.isActive)
            notifier.ready(status: "3 keys, next rotation dev-team in 41d, 0 failing")
            #expect(socket.datagrams() == ["READY=1\nSTATUS=3 keys, next rotation dev-team in 41d, 0 failing"])
        }
    }

    @Test func statusStoppingAndWatchdogPayloads() throws {
        try withNotifySocket { socket in
            let notifier = SystemdNotifier()
            notifier.status("2 keys, 1 failing")
            notifier.stopping(status: "stopping: 1 step in flight")
            notifier.watchdogPing()
            #expect(socket.datagrams() == [
                "STATUS=2 keys, 1 failing",
                "STOPPING=1\nSTATUS=stopping: 1 step in flight",
                "WATCHDOG=1",
            ])
        }
    }

    @Test func reloadingCarriesTheMonotonicClockInMicroseconds() throws {
        try withNotifySocket { socket in
            let before = SystemdNotifier.monotonicMicroseconds()
            SystemdNotifier().reloading(status: "reloading configuration")
            let after = SystemdNotifier.monotonicMicroseconds()
            let datagrams = socket.datagrams()
            try #require(datagrams.count == 1)
            let lines = datagrams[0].split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            try #require(lines.count == 3)
            #expect(lines[0] == "RELOADING=1")
            #expect(lines[2] == "STATUS=reloading configuration")
            let prefix = "MONOTONIC_USEC="
            #expect(lines[1].hasPrefix(prefix))
            let usec = try #require(UInt64(lines[1].dropFirst(prefix.count)))
            #expect(before <= usec && usec <= after)
        }
    }

    @Test func statusTextIsMadeOneLine() throws {
        try withNotifySocket { socket in
            let notifier = SystemdNotifier()
            notifier.status("first\nsecond\r\nthird\0")
            notifier.ready(status: "a\nREADY=0")
            #expect(socket.datagrams() == ["STATUS=first second  third", "READY=1\nSTATUS=a READY=0"])
        }
    }

    @Test func inactiveWithoutNotifySocketAndSendsNothing() {
        withEnvironment(["NOTIFY_SOCKET": nil, "WATCHDOG_USEC": nil, "WATCHDOG_PID": nil]) {
            let notifier = SystemdNotifier()
            #expect(!notifier.isActive)
            notifier.ready(status: "up")
            notifier.status("s")
            notifier.reloading(status: "r")
            notifier.stopping(status: "s")
            notifier.watchdogPing()
            #expect(notifier.watchdogInterval == nil)
            #expect(notifier.watchdogPingInterval == nil)
        }
    }

    @Test func notifierMadeBeforeTheSocketWasSetStaysInactive() throws {
        let notifier = withEnvironment(["NOTIFY_SOCKET": nil]) { SystemdNotifier() }
        try withNotifySocket { socket in
            notifier.ready(status: "up")
            #expect(socket.datagrams().isEmpty)
        }
    }

    @Test func watchdogIntervalFromWatchdogUsecForThisProcess() {
        withEnvironment(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": String(getpid())]) {
            let notifier = SystemdNotifier()
            #expect(notifier.watchdogInterval == .seconds(30))
            #expect(notifier.watchdogPingInterval == .seconds(15))
        }
        withEnvironment(["WATCHDOG_USEC": "1500", "WATCHDOG_PID": nil]) {
            #expect(SystemdNotifier().watchdogInterval == .microseconds(1500))
        }
    }

    @Test func watchdogIsOffForAnotherProcessOrBadValues() {
        withEnvironment(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": String(getpid() + 1)]) {
            #expect(SystemdNotifier().watchdogInterval == nil)
        }
        withEnvironment(["WATCHDOG_USEC": nil, "WATCHDOG_PID": String(getpid())]) {
            #expect(SystemdNotifier().watchdogInterval == nil)
        }
        for bad in ["0", "soon", "-5", ""] {
            withEnvironment(["WATCHDOG_USEC": bad, "WATCHDOG_PID": String(getpid())]) {
                #expect(SystemdNotifier().watchdogInterval == nil, "WATCHDOG_USEC=\(bad)")
            }
        }
    }

    @Test func watchdogPingReachesTheSocketWithTheWatchdogSet() throws {
        try withNotifySocket { socket in
            try withEnvironment(["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": String(getpid())]) {
                let notifier = SystemdNotifier()
                let interval = try #require(notifier.watchdogPingInterval)
                #expect(interval == .seconds(1))
                notifier.watchdogPing()
                notifier.watchdogPing()
                #expect(socket.datagrams() == ["WATCHDOG=1", "WATCHDOG=1"])
            }
        }
    }
}

// MARK: - Support

/// Sets (or, for nil, unsets) process environment variables for `body`, then restores them.
private func withEnvironment<Result>(_ variables: [String: String?], _ body: () throws -> Result) rethrows -> Result {
    let saved = variables.keys.map { name in (name, getenv(name).map { String(cString: $0) }) }
    func apply(_ name: String, _ value: String?) {
        if let value { setenv(name, value, 1) } else { unsetenv(name) }
    }
    for (name, value) in variables { apply(name, value) }
    defer { for (name, value) in saved { apply(name, value) } }
    return try body()
}

/// Binds a datagram socket in a fresh directory and points NOTIFY_SOCKET at it for `body`.
private func withNotifySocket(_ body: (NotifySocket) throws -> Void) throws {
    let directory = try TemporaryDirectory()
    let socket = try NotifySocket(path: directory.file("notify.sock"))
    defer { socket.close() }
    try withEnvironment(["NOTIFY_SOCKET": socket.path]) { try body(socket) }
}

/// An AF_UNIX SOCK_DGRAM socket standing in for systemd's notify socket.
private struct NotifySocket {
    let path: String
    let descriptor: Int32

    struct Failure: Error { var call: String; var errno: Int32 }

    init(path: String) throws {
        self.path = path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(call: "socket", errno: errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            Glibc.close(descriptor)
            throw Failure(call: "path too long", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else {
            let error = errno
            Glibc.close(descriptor)
            throw Failure(call: "bind", errno: error)
        }
    }

    /// Every datagram queued so far (sd_notify has returned, so they are all here).
    func datagrams() -> [String] {
        var received: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard count >= 0 else { break }
            received.append(String(decoding: buffer[0..<count], as: UTF8.self))
        }
        return received
    }

    func close() {
        Glibc.close(descriptor)
    }
}

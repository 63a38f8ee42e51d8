import CSystemd
import Glibc

/// Tells systemd about the daemon's state over `$NOTIFY_SOCKET` (`Type=notify`) and
/// keeps its watchdog fed (`WatchdogSec=`).
///
/// Contract:
/// - Active only when `NOTIFY_SOCKET` was set when the notifier was made; otherwise
///   every call is a no-op, so the daemon runs unchanged in a terminal or a test.
/// - Never unsets the environment (hooks are spawned with a clean environment anyway).
/// - Sending is best effort: a failed `sd_notify` is ignored, since a notify problem
///   must not stop key rotation (systemd acts on a missing READY or ping itself).
/// - `STATUS=` text is made one line: CR and LF become spaces, NUL is dropped
///   (systemd shows only one line and the datagram is a C string).
public struct SystemdNotifier: Sendable {
    /// True when `NOTIFY_SOCKET` was set at `init()`.
    public let isActive: Bool

    /// Reads `NOTIFY_SOCKET` from the process environment.
    public init() {
        isActive = getenv("NOTIFY_SOCKET") != nil
    }

    /// `READY=1` with a status line: startup finished (config and state loaded,
    /// SIGHUP handler installed), or a reload finished.
    public func ready(status: String) {
        send("READY=1\nSTATUS=\(Self.oneLine(status))")
    }

    /// `STATUS=` alone: the one-line summary `systemctl status` shows.
    public func status(_ line: String) {
        send("STATUS=\(Self.oneLine(line))")
    }

    /// `RELOADING=1` with `MONOTONIC_USEC` (CLOCK_MONOTONIC now, in µs; ignored by
    /// systemd 252, required by 253+) and a status line. Follow with `ready(status:)`
    /// once the reload is applied or rejected.
    public func reloading(status: String) {
        send("RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())\nSTATUS=\(Self.oneLine(status))")
    }

    /// `STOPPING=1` with a status line: shutdown has begun.
    public func stopping(status: String) {
        send("STOPPING=1\nSTATUS=\(Self.oneLine(status))")
    }

    /// `WATCHDOG=1`: the main loop is alive. Send at `watchdogPingInterval`.
    public func watchdogPing() {
        send("WATCHDOG=1")
    }

    /// The interval systemd expects pings within (`sd_watchdog_enabled`: `WATCHDOG_USEC`,
    /// honoured only when `WATCHDOG_PID` is unset or this process), or nil when the
    /// watchdog is off or its variables are invalid. Read from the environment on each access.
    public var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    /// Half of `watchdogInterval`: how often the daemon pings, so one late wake-up
    /// does not get it killed.
    public var watchdogPingInterval: Duration? {
        watchdogInterval.map { $0 / 2 }
    }

    private func send(_ text: String) {
        guard isActive else { return }
        _ = sd_notify(0, text)
    }

    /// `text` as one line: CR and LF become spaces, NUL is dropped.
    static func oneLine(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.compactMap { scalar -> Unicode.Scalar? in
            switch scalar {
            case "\n", "\r": " "
            case "\0": nil
            default: scalar
            }
        }))
    }

    /// CLOCK_MONOTONIC now, in microseconds (the clock `MONOTONIC_USEC` is read against).
    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}

import Dispatch
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The process group a hook leads (it runs in its own session, so the group id
/// is the hook's pid), signalled as a whole.
///
/// Linux never hands out a pid that is still in use as a process-group id, so
/// signalling `-pgid` after the leader was reaped reaches only what is left of
/// the hook's group, or nothing (ESRCH), never an unrelated process. A
/// descendant that moved to another group or session (`setsid`, a daemonizing
/// `nohup ... &` does not) has left on purpose and is out of reach.
struct ProcessGroup: Sendable {
    let id: pid_t

    /// Errors are ignored: ESRCH means the group is already gone, and EPERM
    /// cannot happen for our own children.
    func send(_ signal: CInt) {
        _ = kill(-id, signal)
    }

    /// True while any process of the group is running. Zombies do not count: a
    /// killed orphan stays a zombie until its new parent reaps it, and some init
    /// processes (containers, sandboxes) never do.
    var hasLiveMembers: Bool {
        // Cheap first answer: no member at all, not even a zombie.
        if kill(-id, 0) == -1, errno == ESRCH { return false }
        return Self.liveProcessGroups().contains(id)
    }

    /// Ends what is left of the group after its leader exited: SIGTERM, then
    /// SIGKILL once `deadline` has passed while members still run. Returns at
    /// once when nothing is left; otherwise as soon as the members are gone or at
    /// the deadline. Runs to the end even in a cancelled task: leaving a half-
    /// terminated group behind is worse than finishing the grace period.
    ///
    /// - Returns: whether SIGKILL had to be sent.
    @discardableResult
    func terminateRemainingMembers(deadline: ContinuousClock.Instant) async -> Bool {
        guard hasLiveMembers else { return false }
        send(SIGTERM)
        while hasLiveMembers {
            if ContinuousClock.now >= deadline {
                send(SIGKILL)
                return true
            }
            await Self.sleepIgnoringCancellation(for: .milliseconds(50))
        }
        return false
    }

    /// Process-group ids of every running (not zombie) process, from /proc.
    private static func liveProcessGroups() -> Set<pid_t> {
        guard let proc = try? FileDescriptor.open("/proc", .readOnly, options: [.directory, .closeOnExec]) else {
            return []
        }
        let names = (try? proc.closeAfter { try Syscall.entryNames(of: proc) }) ?? []
        var groups: Set<pid_t> = []
        for name in names where name.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            // A process may exit between the listing and the read: then it is not live.
            guard let stat = try? FileIO.readAll(path: "/proc/\(name)/stat", limit: 4096),
                let status = ProcStat(stat), status.state != UInt8(ascii: "Z"), status.state != UInt8(ascii: "X")
            else { continue }
            groups.insert(status.processGroup)
        }
        return groups
    }

    /// A sleep that a cancelled task still sits through (`Task.sleep` would
    /// return at once and turn the polling above into a busy loop).
    static func sleepIgnoringCancellation(for duration: Duration) async {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = Int(clamping: seconds) &* 1_000_000_000 &+ Int(attoseconds / 1_000_000_000)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(max(0, nanoseconds))) {
                continuation.resume()
            }
        }
    }
}

/// The two fields of /proc/PID/stat the group sweep needs.
private struct ProcStat {
    var state: UInt8
    var processGroup: pid_t

    /// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so
    /// the fields are counted from the last ")".
    init?(_ bytes: [UInt8]) {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "))
        guard fields.count >= 3, let state = fields[0].first,
            let group = pid_t(String(decoding: fields[2], as: UTF8.self))
        else { return nil }
        self.state = state
        self.processGroup = group
    }
}

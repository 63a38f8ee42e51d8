import Foundation
import Glibc
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// Settling a `Fleet` and checking the invariants of issue 6 on it.
extension Fleet {
    /// Every managed key's progress, from the daemon.
    func progress() throws -> [KeyProgress] {
        try ControlClient.send(
            ControlRequest(command: .status), to: socket, expecting: [KeyProgress].self, timeout: .seconds(10)
        ).result ?? []
    }

    /// Ends a seconds-long schedule: `rotate_every` becomes 1h (SIGHUP), then waits
    /// until every key is idle with its next rotation far off, nothing left to
    /// retire, and one live keyrotd key each at the server.
    func settle(from rotateEvery: String, seconds: Double = 30) async throws -> Bool {
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: "rotate_every = \"\(rotateEvery)\"", with: "rotate_every = \"1h\"")
            .write(toFile: config, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        return try await waitFor(seconds: seconds) {
            guard let keys = try? progress(), !keys.isEmpty else { return false }
            for key in keys {
                guard key.phase == .idle, key.retiringKeyID == nil, let due = key.nextDue, due > Date() + 600,
                    try await live(key.key).count == 1
                else { return false }
            }
            return true
        }
    }

    /// `checkSettledInvariants` for this fleet's keys, as the daemon reports them.
    func checkInvariants(overlap: TimeInterval, hookLogs: [String] = ["deploys.log"]) async throws {
        let keys = try progress().map(\.key)
        try await checkSettledInvariants(scratch: scratch, server: server, config: config, keys: keys, overlap: overlap, hookLogs: hookLogs)
    }
}

/// The processes of the system, from /proc (a process may exit while it is read:
/// then it is simply not there).
struct ProcessTable {
    struct Entry {
        var pid: pid_t
        var parent: pid_t
        var group: pid_t
        /// The one-letter state: "Z" for a zombie.
        var state: Character
    }

    let entries: [pid_t: Entry]

    init() {
        var entries: [pid_t: Entry] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), let stat = readWholeFile("/proc/\(name)/stat"),
                let close = stat.lastIndex(of: UInt8(ascii: ")"))
            else { continue }
            // "pid (comm) state ppid pgrp ...": comm may hold anything, so count from the last ")".
            let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
            guard fields.count > 3, let state = fields[0].first, let parent = pid_t(fields[1]), let group = pid_t(fields[2])
            else { continue }
            entries[pid] = Entry(pid: pid, parent: parent, group: group, state: state)
        }
        self.entries = entries
    }

    /// Running (not a zombie, not gone).
    func isLive(_ pid: pid_t) -> Bool {
        entries[pid].map { $0.state != "Z" && $0.state != "X" } ?? false
    }

    /// Live members of process group `group`.
    func liveMembers(ofGroup group: pid_t) -> [pid_t] {
        entries.values.filter { $0.group == group && isLive($0.pid) }.map(\.pid)
    }

    /// Every live descendant of `pid`, children first.
    func descendants(of pid: pid_t) -> [pid_t] {
        var found: [pid_t] = []
        var frontier = [pid]
        while let next = frontier.popLast() {
            let children = entries.values.filter { $0.parent == next && isLive($0.pid) }.map(\.pid)
            found += children
            frontier += children
        }
        return found
    }
}

/// The whole content of a file, /proc ones too (whose size reads as 0); nil when it cannot be read.
func readWholeFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else { return nil }
        if count == 0 { return bytes }
        bytes += buffer[..<count]
    }
}

/// A pid a hook wrote to `<scratch>/<name>`, once the file is complete.
func pid(in scratch: Scratch, _ name: String) -> pid_t? {
    (try? String(contentsOfFile: scratch.file(name), encoding: .utf8))
        .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
}

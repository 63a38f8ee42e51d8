import Foundation
import Glibc
import KeyRotation
import KeyRotationAdapters
import Synchronization
import TestSupport
import Testing

/// Every place the sentinel was found, described without it.
final class Leaks: Sendable {
    let sentinel: Sentinel
    private let places = Mutex<[String]>([])

    init(_ sentinel: Sentinel) {
        self.sentinel = sentinel
    }

    var all: [String] { places.withLock { $0 } }

    func check(_ text: String, in place: String) {
        check(Array(text.utf8), in: place)
    }

    func check(_ bytes: [UInt8], in place: String) {
        guard sentinel.occurs(in: bytes) else { return }
        // NULs separate /proc's argv and environment entries.
        let text = String(decoding: bytes.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.contains(sentinel.text) }.map(String.init) ?? ""
        report("\(place): \(sentinel.masked(line).prefix(300))")
    }

    func report(_ finding: String) {
        places.withLock { $0.append(finding) }
    }
}

/// Samples, over and over while the daemon runs, what others could read of it:
/// /proc/PID/cmdline and environ of keyrotd and of every process below it (hooks
/// and their children, caught from outside while they run), and the state file,
/// which may hold a secret only as the pending key's, while it is verified and
/// deployed.
final class Sampler: Sendable {
    struct Counts {
        var rounds = 0
        /// Reads of a deploy hook's environment (or its children's).
        var deployHookSamples = 0
        /// State files seen holding the pending secret (allowed, and what shows the search works there).
        var pendingSecrets = 0
    }

    let leaks: Leaks
    let daemon: pid_t
    let stateFile: String
    private let counts = Mutex(Counts())

    init(leaks: Leaks, daemon: pid_t, stateFile: String) {
        self.leaks = leaks
        self.daemon = daemon
        self.stateFile = stateFile
    }

    var totals: Counts { counts.withLock { $0 } }

    func run() async {
        while !Task.isCancelled {
            sample()
            try? await Task.sleep(for: .milliseconds(40))
        }
    }

    func sample() {
        var deployHooks = 0
        for pid in [daemon] + ProcessTable().descendants(of: daemon) {
            let who = pid == daemon ? "keyrotd" : "process \(pid) below keyrotd"
            if let cmdline = readWholeFile("/proc/\(pid)/cmdline") { leaks.check(cmdline, in: "/proc/PID/cmdline of \(who)") }
            guard let environ = readWholeFile("/proc/\(pid)/environ") else { continue }
            leaks.check(environ, in: "/proc/PID/environ of \(who)")
            if Data(environ).range(of: Data("KEYROTD_EVENT=deploy".utf8)) != nil { deployHooks += 1 }
        }
        let pending = checkStateFile()
        counts.withLock {
            $0.rounds += 1
            $0.deployHookSamples += deployHooks
            if pending { $0.pendingSecrets += 1 }
        }
    }

    /// Whether the state file holds a pending secret where it may; a sentinel
    /// anywhere else is a leak.
    private func checkStateFile() -> Bool {
        guard let bytes = FileManager.default.contents(atPath: stateFile).map(Array.init),
            leaks.sentinel.occurs(in: bytes)
        else { return false }
        guard let file = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            let keys = (file["state"] as? [String: Any])?["keys"] as? [String: [String: Any]]
        else {
            leaks.report("the state file holds the sentinel and does not parse")
            return false
        }
        var found: [[String]] = []
        Self.paths(of: leaks.sentinel.text, in: file, at: [], into: &found)
        var pending = false
        for path in found {
            if path.count == 5, path[0] == "state", path[1] == "keys", path[3] == "pending", path[4] == "secret",
                let record = keys[path[2]], Self.mayHoldSecret(record)
            {
                pending = true
            } else {
                let phase = path.count > 2 ? keys[path[2]]?["phase"] as? String : nil
                leaks.report("the state file holds the sentinel at \(path.joined(separator: ".")) (phase \(phase ?? "-"))")
            }
        }
        return pending
    }

    /// Between create and the end of deploy: verifying, deploying, or blocked in either.
    static func mayHoldSecret(_ record: [String: Any]) -> Bool {
        let steps = ["verifying", "deploying"]
        guard let phase = record["phase"] as? String else { return false }
        return steps.contains(phase) || (phase == "blocked" && steps.contains(record["blockedStep"] as? String ?? ""))
    }

    /// The JSON paths of every string (or object key) holding `needle`.
    static func paths(of needle: String, in value: Any, at path: [String], into found: inout [[String]]) {
        switch value {
        case let text as String:
            if text.contains(needle) { found.append(path) }
        case let object as [String: Any]:
            for (key, member) in object {
                if key.contains(needle) { found.append(path + ["<key>"]) }
                paths(of: needle, in: member, at: path + [key], into: &found)
            }
        case let array as [Any]:
            for (index, member) in array.enumerated() { paths(of: needle, in: member, at: path + ["\(index)"], into: &found) }
        default:
            break
        }
    }
}

/// A process's capabilities, dropped: `setpriv` with an empty bounding and
/// inheritable set, so that uid 0 gets none at exec. Empty when not root (there
/// is nothing to drop, and setpriv could not).
let withoutCapabilities = getuid() == 0 ? ["/usr/bin/setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"] : []

/// Whether `pid`'s /proc/PID/environ opens for a process of the same uid without
/// capabilities: no when `pid` is non-dumpable.
///
/// PR_GET_DUMPABLE answers only for the calling process, /proc/PID/status has no
/// such line, and the root:root owner /proc/PID/* takes when a process is not
/// dumpable tells nothing to a test that runs as root. Opening environ does tell:
/// it passes the kernel's ptrace access check (PTRACE_MODE_READ), which lets a
/// caller with the target's uids and a superset of its capabilities through unless
/// the target is not dumpable, and then only with CAP_SYS_PTRACE. So keyrotd runs
/// without capabilities and a reader without them tries; a dumpable process started
/// the same way is the control that shows nothing else refuses the read.
func environOpensWithoutCapabilities(_ pid: pid_t) throws -> Bool {
    let command = withoutCapabilities + ["/bin/dd", "if=/proc/\(pid)/environ", "of=/dev/null", "count=1", "status=none"]
    return try runTool(command[0], Array(command.dropFirst()), environment: ["PATH": "/usr/bin:/bin"]).status == 0
}

/// One daemon's whole life with every secret marked by a sentinel: rotations,
/// a failing hook retried, a revoke, a rotate, a reload, status and audit over
/// the socket and the command line, a stop. The sentinel must never show in
/// what others can read: /proc of keyrotd and its hooks, keyrotd's log (hooks
/// echo the secret to it), the state file outside a deploy, control replies, CLI
/// output. The journal is scripts/test-systemd's ("no secret in the journal").
@Suite(.serialized) struct SecretHygieneTests {
    static let keys = ["alpha", "beta", "gamma"]

    /// A second deploy hook: copies its own /proc cmdline and environ, echoes the
    /// secret to stdout and stderr (and through a child), and fails beta's
    /// generation 2 once with the secret as its last stderr line (which becomes
    /// the failure message in the state, the log and status).
    static func echoingHook(in scratch: Scratch) throws -> String {
        try scratch.write("hooks/echoing", """
            #!/bin/sh
            set -u
            DIR="\(scratch.path)"
            mkdir -p "$DIR/hook-proc"
            copy="$DIR/hook-proc/$KEYROTD_KEY-g$KEYROTD_GENERATION-$KEYROTD_EVENT-$$"
            cp /proc/$$/cmdline "$copy.cmdline"
            cp /proc/$$/environ "$copy.environ"
            [ "$KEYROTD_EVENT" = deploy ] || exit 0
            IFS= read -r secret
            echo "echoing hook read $secret"
            echo "echoing hook read $secret" >&2
            printf '%s\\n' "$secret" | cat
            if [ "$KEYROTD_KEY" = beta ] && [ "$KEYROTD_GENERATION" = 2 ] && [ ! -e "$DIR/beta-failed" ]; then
              : > "$DIR/beta-failed"
              echo "refusing $secret on purpose" >&2
              exit 3
            fi

            """, mode: 0o755)
    }

    @Test func noSecretShowsAnywhereInAWholeLife() async throws {
        let sentinel = Sentinel()
        sentinel.record()
        let leaks = Leaks(sentinel)
        let fleet = try await Fleet(
            keys: Self.keys, rotateEvery: "4s", overlap: "1s", hookDelay: 1,
            seed: { _ = try await $0.control(.post, "/_control/options", ["secret_prefix": sentinel.text]) },
            moreHooks: { [try Self.echoingHook(in: $0)] }, launcher: withoutCapabilities)
        defer { fleet.scratch.remove() }
        let stateFile = fleet.scratch.file("state/state.json")
        let sampler = Sampler(leaks: leaks, daemon: fleet.daemon.child.pid, stateFile: stateFile)
        var replies: [(what: String, text: String)] = []

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await sampler.run() }
            defer { group.cancelAll() }

            // Two full rotations of every key, status and audit asked all along.
            var round = 0
            let rotated = try await waitFor(seconds: 40) {
                round += 1
                if let reply = try? rawExchange(fleet.socket, Array("{\"version\":1,\"command\":\"status\"}\n".utf8)) {
                    replies.append(("status reply", reply))
                }
                if round % 10 == 0, let reply = try? rawExchange(fleet.socket, Array("{\"version\":1,\"command\":\"audit\"}\n".utf8)) {
                    replies.append(("audit reply", reply))
                }
                let keys = try await fleet.server.keys()
                return Self.keys.allSatisfy { name in
                    keys.filter { isKeyrotdKey($0, of: name) && $0["deleted_at"] is String }.count >= 2
                }
            }
            #expect(rotated, "two rotations of every key did not complete")

            let revoke = try fleet.cli(["revoke", "alpha", "--wait", "--timeout", "60s"])
            #expect(revoke.status == 0, "revoke exited \(revoke.status)")
            replies += [("revoke output", revoke.stdout + revoke.stderr)]
            replies.append(("rotate reply", try rawExchange(fleet.socket, Array("{\"version\":1,\"command\":\"rotate\",\"key\":\"gamma\"}\n".utf8))))
            replies.append(("revoke reply", try rawExchange(fleet.socket, Array("{\"version\":1,\"command\":\"revoke\",\"key\":\"beta\"}\n".utf8))))
            let settled = try await fleet.settle(from: "4s")
            #expect(settled, "the fleet did not settle after the reload")

            for arguments in [["audit", "--json"], ["audit"]] {
                let outcome = try fleet.cli(arguments)
                #expect(outcome.status == 0, "\(arguments) exited \(outcome.status)")
                replies.append(("keyrotd \(arguments.joined(separator: " ")) output", outcome.stdout + outcome.stderr))
            }
            for arguments in [["status", "--json"], ["status"], ["plan", "--json"]] {
                let outcome = try keyrotd(arguments + ["--config", fleet.config])
                #expect(outcome.status == 0, "\(arguments) exited \(outcome.status)")
                replies.append(("keyrotd \(arguments.joined(separator: " ")) output", outcome.stdout + outcome.stderr))
            }
            replies.append(("status reply", try rawExchange(fleet.socket, Array("{\"version\":1,\"command\":\"status\"}\n".utf8))))
            replies.append(("audit reply", try rawExchange(fleet.socket, Array("{\"version\":1,\"command\":\"audit\"}\n".utf8))))
            leaks.check(try Array(Data(contentsOf: URL(fileURLWithPath: stateFile))), in: "the state file once settled")

            // Non-dumpable: compare with a dumpable process started the same way.
            let sleep = withoutCapabilities + ["/bin/sleep", "30"]
            let control = try ChildProcess(sleep[0], Array(sleep.dropFirst()), environment: [:], output: nil)
            defer { control.stop() }
            _ = try await waitFor(seconds: 5) {
                readWholeFile("/proc/\(control.pid)/cmdline").map { $0.starts(with: Array("/bin/sleep".utf8)) } == true
            }
            #expect(try environOpensWithoutCapabilities(control.pid), "the check cannot tell: a dumpable process is refused too")
            #expect(try !environOpensWithoutCapabilities(fleet.daemon.child.pid), "keyrotd is dumpable")
        }
        #expect(await fleet.stop() == 0, "keyrotd did not stop cleanly")

        let log = fleet.daemon.log()
        leaks.check(log, in: "keyrotd's log")
        for (what, text) in replies { leaks.check(text, in: what) }
        for name in try FileManager.default.contentsOfDirectory(atPath: fleet.scratch.file("state")) {
            leaks.check(readWholeFile(fleet.scratch.file("state/\(name)")) ?? [], in: "\(name) in the state directory after the stop")
        }
        let copies = try FileManager.default.contentsOfDirectory(atPath: fleet.scratch.file("hook-proc"))
        for name in copies {
            leaks.check(readWholeFile(fleet.scratch.file("hook-proc/\(name)")) ?? [], in: "the hook's own /proc copy \(name)")
        }
        #expect(leaks.all.isEmpty, "the sentinel was found:\n\(leaks.all.joined(separator: "\n"))")

        // The search is sound: the secrets carry the sentinel, the log holds the
        // hooks' redacted echoes, and the sampler saw deploy hooks and a pending secret.
        // (Each condition is a Bool first: #expect would print the operands of a
        // failing call, and those hold secrets.)
        for key in Self.keys {
            let consumer = try Array(Data(contentsOf: URL(fileURLWithPath: fleet.scratch.file("consumer-\(key)"))))
            let marked = sentinel.occurs(in: consumer)
            #expect(marked, "\(key)'s secret does not carry the sentinel")
        }
        let echoed = log.contains("echoing hook read <redacted>")
        #expect(echoed, "the hook's echo of the secret is not in the log, redacted")
        let quoted = log.contains("refusing <redacted> on purpose")
        #expect(quoted, "the retried failure, redacted, is not in the log")
        #expect(copies.filter { $0.contains("-deploy-") }.count >= 2 * Self.keys.count * 3, "hook /proc copies: \(copies.count)")
        #expect(copies.contains { $0.contains("-retire-") })
        let totals = sampler.totals
        // How many rounds fit depends on the machine's load; what matters is that
        // deploy hooks and the pending secret were caught (next two checks).
        #expect(totals.rounds >= 10, "only \(totals.rounds) samples")
        #expect(totals.deployHookSamples >= 3, "deploy hooks were sampled \(totals.deployHookSamples) times")
        #expect(totals.pendingSecrets >= 1, "the pending secret was never seen in the state file")

        // 0600 in a 0700 directory.
        var info = stat()
        #expect(stat(stateFile, &info) == 0 && info.st_mode & 0o777 == 0o600, "state file mode \(String(info.st_mode & 0o777, radix: 8))")
        #expect(stat(fleet.scratch.file("state"), &info) == 0 && info.st_mode & 0o777 == 0o700, "state directory mode \(String(info.st_mode & 0o777, radix: 8))")
    }
}

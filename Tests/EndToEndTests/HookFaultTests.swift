import Foundation
import Glibc
import KeyRotation
import TestSupport
import Testing

/// Hook faults end to end, through `keyrotd run`: every key deploys through the
/// consumer hook and then a hook that misbehaves on its second run (the first
/// rotation, when an old key is there to protect). The runner's own tests
/// (AdapterTests/Hook*) pin down each mechanism; these check that the daemon
/// around it retries, keeps the old key, and settles with the invariants intact.
@Suite(.serialized) struct HookFaultTests {
    static let keys = ["alpha", "beta"]
    static let rotateEvery = "3s"
    static let faultyLog = "faulty-deploys.log"

    /// A fleet whose deploys go through the consumer hook, then `faulty`: a shell
    /// body in which `$run` counts this key's deploy runs from 1 and `$DIR` is the
    /// scratch directory. When the body falls through, the hook records the deploy
    /// in faulty-deploys.log and exits 0.
    static func fleet(faulty body: String) async throws -> Fleet {
        try await Fleet(keys: keys, rotateEvery: rotateEvery, overlap: "1s", moreHooks: { scratch in
            [try scratch.write("hooks/faulty", """
                #!/bin/sh
                set -u
                DIR="\(scratch.path)"
                [ "$KEYROTD_EVENT" = deploy ] || exit 0
                run=$(( $(cat "$DIR/runs-$KEYROTD_KEY" 2>/dev/null || echo 0) + 1 ))
                echo "$run" > "$DIR/runs-$KEYROTD_KEY"
                \(body)
                echo "$KEYROTD_KEY $KEYROTD_KEY_ID $(date +%s%3N)" >> "$DIR/\(faultyLog)"

                """, mode: 0o755)]
        })
    }

    /// Waits until the faulty hook has deployed every key's first two generations,
    /// calls `rotated`, settles the fleet, checks the invariants and stops the
    /// daemon (exit 0).
    static func finish(_ fleet: Fleet, rotated: (Fleet) throws -> Void = { _ in }) async throws {
        let done = try await waitFor(seconds: 40) {
            let done = deploys(in: fleet.scratch, log: faultyLog)
            return keys.allSatisfy { key in done.filter { $0.key == key }.count >= 2 }
        }
        #expect(done, "the faulty hook never got through a rotation:\n\(fleet.daemon.log())")
        try rotated(fleet)
        let settled = try await fleet.settle(from: rotateEvery)
        #expect(settled, "the fleet did not settle:\n\(fleet.daemon.log())")
        try await fleet.checkInvariants(overlap: 1, hookLogs: ["deploys.log", faultyLog])
        #expect(await fleet.stop() == 0, "keyrotd did not stop cleanly:\n\(fleet.daemon.log())")
    }

    /// Failures are retried with backoff, and a retry runs only the hook that
    /// failed: the consumer hook deployed each key id once.
    @Test func aHookExitingNonZeroIsRetriedUntilItSucceeds() async throws {
        let fleet = try await Self.fleet(faulty: """
            case "$run" in 1|3|4) echo "failing on purpose, run $run" >&2; exit 7;; esac
            """)
        defer { fleet.scratch.remove() }
        try await Self.finish(fleet)
        #expect(fleet.events("step-failed").filter { $0.contains("error=hook_exit_7") }.count >= 3 * Self.keys.count)
        let consumer = deploys(in: fleet.scratch)
        #expect(Set(consumer.map(\.id)).count == consumer.count, "the consumer hook ran again for a retry")
    }

    /// On its second run the hook starts a background child, records its own pid
    /// in `leader-<key>` and the child's in `child-<key>`, and waits for the child.
    static let stuckOnSecondRun = """
        if [ "$run" -eq 2 ]; then
          sleep 1000 &
          echo $! > "$DIR/child-$KEYROTD_KEY"
          echo $$ > "$DIR/leader-$KEYROTD_KEY"
          wait
        fi
        """

    /// Whether every stuck hook's leader, child and process group are gone.
    static func stuckHooksAreGone(_ fleet: Fleet) throws -> Bool {
        let processes = ProcessTable()
        return try keys.allSatisfy { key in
            let leader = try #require(pid(in: fleet.scratch, "leader-\(key)"))
            let child = try #require(pid(in: fleet.scratch, "child-\(key)"))
            return !processes.isLive(leader) && !processes.isLive(child) && processes.liveMembers(ofGroup: leader).isEmpty
        }
    }

    /// Past hook_timeout (5s) the hook's whole process group is killed, a
    /// background child included, and the deploy is retried.
    @Test func aHangingHookIsKilledWithItsGroupAndRetried() async throws {
        let fleet = try await Self.fleet(faulty: Self.stuckOnSecondRun)
        defer { fleet.scratch.remove() }
        try await Self.finish(fleet)
        #expect(fleet.events("step-failed").filter { $0.contains("error=hook_timeout") }.count == Self.keys.count)
        #expect(try Self.stuckHooksAreGone(fleet), "a hung hook or its child survived")
    }

    /// Killed from outside mid-run (SIGKILL to the shell): a failure with the
    /// signal, the child it leaves behind is ended, and the deploy is retried.
    @Test func aHookKilledBySignalMidRunIsRetried() async throws {
        let fleet = try await Self.fleet(faulty: Self.stuckOnSecondRun)
        defer { fleet.scratch.remove() }
        for key in Self.keys {
            var leader: pid_t?
            _ = try await waitFor(seconds: 30) {
                leader = pid(in: fleet.scratch, "leader-\(key)")
                return leader != nil
            }
            kill(try #require(leader, "\(key): the hook never reached its second run"), SIGKILL)
        }
        try await Self.finish(fleet)
        #expect(fleet.events("step-failed").filter { $0.contains("error=hook_signal_9") }.count == Self.keys.count)
        #expect(try Self.stuckHooksAreGone(fleet), "a killed hook's child survived")
    }

    /// 16 MB of lines on stdout and one 16 MB line on stderr from each key's hook,
    /// the secret among them: the hook never blocks (no timeout), keyrotd's memory
    /// grows by far less than that, the log keeps 64 KiB a stream and says the rest
    /// was cut, and the secret is redacted.
    @Test func aHookFloodingItsOutputNeitherBlocksNorBloats() async throws {
        let fleet = try await Self.fleet(faulty: """
            if [ "$run" -eq 2 ]; then
              IFS= read -r secret
              echo "flooding with $secret"
              yes "a line of output that says nothing, over and over, $KEYROTD_KEY" | head -c 16777216 &
              head -c 16777216 /dev/zero | tr '\\0' x >&2
              wait
              echo "the secret again, past the limit: $secret"
            fi
            """)
        defer { fleet.scratch.remove() }
        _ = try await waitFor(seconds: 20) { Self.keys.allSatisfy { key in deploys(in: fleet.scratch, log: Self.faultyLog).contains { $0.key == key } } }
        let before = try #require(Self.peakResidentKilobytes(fleet.daemon.child.pid))
        var after: Int?
        try await Self.finish(fleet) { after = Self.peakResidentKilobytes($0.daemon.child.pid) }
        // The peak resident memory grew by far less than the 64 MB written (what
        // keyrotd itself needs varies with the build: a debug one starts near 40 MB).
        let growth = try #require(after) - before
        #expect(growth < 24 * 1024, "keyrotd's peak memory grew by \(growth) kB during the floods")
        let log = fleet.daemon.log()
        #expect(fleet.events("step-failed").isEmpty, "a flooding hook failed")
        let truncated = log.split(separator: "\n").filter { $0.contains("output truncated") }
        for stream in ["stdout", "stderr"] {
            let cuts = truncated.filter { $0.contains("on \(stream)") }.count
            #expect(cuts == Self.keys.count, "\(stream) was cut \(cuts) times")
        }
        #expect(log.utf8.count < 1 << 20, "keyrotd logged \(log.utf8.count) bytes")
        let redacted = log.contains("flooding with <redacted>")
        #expect(redacted, "the flood's first line is not in the log, redacted")
        for key in Self.keys {
            let secret = try String(contentsOfFile: fleet.scratch.file("consumer-\(key)"), encoding: .utf8)
                .trimmingCharacters(in: .newlines)
            let leaked = log.contains(secret)
            #expect(!leaked, "\(key): a secret reached keyrotd's log")
        }
    }

    /// A grandchild that ignores SIGTERM and outlives the hook (holding its
    /// output open) is killed after the grace; the deploy still succeeds.
    @Test func aGrandchildOutlivingTheHookIsKilled() async throws {
        let fleet = try await Self.fleet(faulty: """
            if [ "$run" -eq 2 ]; then
              ( (trap '' TERM; exec sleep 1000) & echo $! > "$DIR/grandchild-$KEYROTD_KEY" )
            fi
            """)
        defer { fleet.scratch.remove() }
        try await Self.finish(fleet)
        #expect(fleet.events("step-failed").isEmpty)
        let processes = ProcessTable()
        for key in Self.keys {
            let grandchild = try #require(pid(in: fleet.scratch, "grandchild-\(key)"))
            #expect(!processes.isLive(grandchild), "\(key): the grandchild survived")
        }
        #expect(fleet.daemon.log().contains("ignored SIGTERM; SIGKILL sent to its process group"))
    }

    /// A hook that closes stdin unread succeeds like any other: keyrotd wrote the
    /// secret before the start and never waits on the reader.
    @Test func aHookThatReadsNoStdinSucceeds() async throws {
        let fleet = try await Self.fleet(faulty: "exec 0<&-")
        defer { fleet.scratch.remove() }
        try await Self.finish(fleet)
        #expect(fleet.events("step-failed").isEmpty, "\(fleet.daemon.log())")
    }

    /// VmHWM of /proc/PID/status, in kB.
    static func peakResidentKilobytes(_ pid: pid_t) -> Int? {
        let status = String(decoding: readWholeFile("/proc/\(pid)/status") ?? [], as: UTF8.self)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return nil }
        return Int(line.split(separator: " ")[1])
    }
}

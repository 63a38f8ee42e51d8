import Foundation
import Glibc
import Testing
@testable import KeyRotation
@testable import KeyRotationAdapters

/// Timeouts, cancellation and leftovers: whatever way a run ends, the hook's
/// whole process group is gone when `run` returns. No timing is asserted beyond
/// "it returned"; `allGone` only waits for the kernel to finish the kills.
@Suite struct HookTerminationTests {
    @Test func aHangingHookTimesOutAndItsGroupIsKilled() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("hang", #"""
            sleep 1000 &
            echo $! > "$DIR/child"
            echo $$ > "$DIR/leader"
            sleep 1000
            """#)
        let outcome = await fixture.runner(killGrace: .seconds(1)).run(
            retire(hook), provider: "mistral", timeout: .seconds(1))
        let failure = try #require(outcome.failure)
        #expect(failure.code == "hook_timeout")
        #expect(failure.kind == .transient)
        #expect(await allGone([try fixture.pid("child")]))
        #expect(await allGone([try fixture.pid("leader")], command: "/bin/sh"))
    }

    /// SIGTERM is ignored by the shell and, inherited, by its children: only the
    /// SIGKILL after the grace period ends them.
    @Test func aHookIgnoringSigtermIsKilledAfterTheGrace() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("stubborn", #"""
            trap '' TERM
            sleep 1000 &
            echo $! > "$DIR/child"
            echo $$ > "$DIR/leader"
            while :; do sleep 1; done
            """#)
        let outcome = await fixture.runner(killGrace: .seconds(1)).run(
            retire(hook), provider: "mistral", timeout: .seconds(1))
        #expect(outcome.failure?.code == "hook_timeout")
        #expect(await allGone([try fixture.pid("child")]))
        #expect(await allGone([try fixture.pid("leader")], command: "/bin/sh"))
    }

    /// Output written while the hook shuts down after SIGTERM is still logged.
    @Test func outputDuringTheGraceIsStillLogged() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("graceful", #"""
            trap 'echo "cleaning up"; exit 1' TERM
            echo started
            while :; do sleep 0.05; done
            """#)
        let outcome = await fixture.runner(killGrace: .seconds(5)).run(
            retire(hook), provider: "mistral", timeout: .seconds(1))
        #expect(outcome.failure?.code == "hook_timeout")
        #expect(fixture.recorder.lines("stdout") == ["started", "cleaning up"])
    }

    /// With its output closed the reads end early; the deadline still applies
    /// to the process itself.
    @Test func aHookThatClosesItsOutputStillTimesOut() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("silent", #"""
            exec >/dev/null 2>&1
            echo $$ > "$DIR/leader"
            sleep 1000
            """#)
        let outcome = await fixture.runner(killGrace: .seconds(1)).run(
            retire(hook), provider: "mistral", timeout: .seconds(1))
        #expect(outcome.failure?.code == "hook_timeout")
        #expect(await allGone([try fixture.pid("leader")], command: "/bin/sh"))
    }

    @Test func childrenLeftBehindByAFinishedHookAreKilled() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("leaves", #"""
            sleep 1000 &
            echo $! > "$DIR/child"
            exit 0
            """#)
        let outcome = await fixture.runner(killGrace: .seconds(1)).run(
            retire(hook), provider: "mistral", timeout: .seconds(10))
        #expect(outcome == .succeeded)
        #expect(await allGone([try fixture.pid("child")]))
    }

    /// A leftover that ignores SIGTERM gets SIGKILL once the grace has passed.
    @Test func leftoversIgnoringSigtermAreKilledAfterTheGrace() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("leaves-stubborn", #"""
            (trap '' TERM; exec sleep 1000) &
            echo $! > "$DIR/child"
            exit 0
            """#)
        let outcome = await fixture.runner(killGrace: .seconds(1)).run(
            retire(hook), provider: "mistral", timeout: .seconds(10))
        #expect(outcome == .succeeded)
        #expect(await allGone([try fixture.pid("child")]))
    }

    @Test func cancellingTheCallerKillsTheGroup() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("hang", #"""
            sleep 1000 &
            echo $! > "$DIR/child"
            echo $$ > "$DIR/leader"
            sleep 1000
            """#)
        let runner = fixture.runner(killGrace: .seconds(1))
        let run = Task { await runner.run(retire(hook), provider: "mistral", timeout: .seconds(600)) }
        let started = await eventually { FileManager.default.fileExists(atPath: fixture.file("leader")) }
        try #require(started)
        run.cancel()
        let outcome = await run.value
        #expect(outcome.failure?.code == "hook_cancelled")
        #expect(outcome.failure?.kind == .transient)
        #expect(await allGone([try fixture.pid("child")]))
        #expect(await allGone([try fixture.pid("leader")], command: "/bin/sh"))
    }

    @Test func cancellingAHookThatIgnoresSigtermStillKillsIt() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("stubborn", #"""
            trap '' TERM
            sleep 1000 &
            echo $! > "$DIR/child"
            echo $$ > "$DIR/leader"
            while :; do sleep 1; done
            """#)
        let runner = fixture.runner(killGrace: .seconds(1))
        let run = Task { await runner.run(retire(hook), provider: "mistral", timeout: .seconds(600)) }
        let started = await eventually { FileManager.default.fileExists(atPath: fixture.file("leader")) }
        try #require(started)
        run.cancel()
        #expect(await run.value.failure?.code == "hook_cancelled")
        #expect(await allGone([try fixture.pid("child")]))
        #expect(await allGone([try fixture.pid("leader")], command: "/bin/sh"))
    }

    /// The leader dies of SIGTERM at once, a child that ignores it stays: it is
    /// killed after the grace even though the calling task is cancelled.
    @Test func cancellingKillsLeftoversThatIgnoreSigterm() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("split", #"""
            (trap '' TERM; exec sleep 1000) &
            echo $! > "$DIR/child"
            echo $$ > "$DIR/leader"
            sleep 1000
            """#)
        let runner = fixture.runner(killGrace: .seconds(1))
        let run = Task { await runner.run(retire(hook), provider: "mistral", timeout: .seconds(600)) }
        let started = await eventually { FileManager.default.fileExists(atPath: fixture.file("leader")) }
        try #require(started)
        run.cancel()
        #expect(await run.value.failure?.code == "hook_cancelled")
        #expect(await allGone([try fixture.pid("child")]))
        #expect(await allGone([try fixture.pid("leader")], command: "/bin/sh"))
    }

    @Test func anAlreadyCancelledCallerStartsNothing() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("never", #"echo ran > "$DIR/ran""#)
        let runner = fixture.runner()
        let run = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await runner.run(retire(hook), provider: "mistral", timeout: .seconds(10))
        }
        #expect(await run.value.failure?.code == "hook_cancelled")
        #expect(!FileManager.default.fileExists(atPath: fixture.file("ran")))
    }
}

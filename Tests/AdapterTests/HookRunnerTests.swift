import Foundation
import Glibc
import Logging
import Testing
@testable import KeyRotation
@testable import KeyRotationAdapters

/// The hook contract (the README's "Hooks" section), proved with real /bin/sh hooks.
@Suite struct HookRunnerTests {
    @Test func deployHandsTheSecretOverOnStdinOnly() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("deploy", #"""
            cat > "$DIR/stdin"
            printf '%s\n' "$0" "$#" > "$DIR/argv"
            tr '\0' '\n' < /proc/$$/cmdline > "$DIR/cmdline"
            tr '\0' '\n' < /proc/$$/environ > "$DIR/environ"
            """#)
        let outcome = await fixture.runner().run(deploy(hook), provider: "mistral", timeout: .seconds(10))
        #expect(outcome == .succeeded)
        let secret = testSecret.withExposedText { $0 }
        #expect(try fixture.text("stdin") == secret + "\n")
        #expect(try fixture.text("argv") == hook + "\n0\n")
        #expect(try fixture.text("cmdline") == "/bin/sh\n" + hook + "\n")
        #expect(try !fixture.text("environ").contains(secret))
    }

    @Test func retireGetsAnEmptyStdinThatEndsAtOnce() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("retire", #"cat > "$DIR/stdin"; echo done > "$DIR/done""#)
        let outcome = await fixture.runner().run(retire(hook), provider: "mistral", timeout: .seconds(10))
        #expect(outcome == .succeeded)
        #expect(try fixture.text("stdin").isEmpty)
        #expect(try fixture.text("done") == "done\n")
    }

    @Test func deployWithoutASecretIsNotStarted() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("deploy", #"echo ran > "$DIR/ran""#)
        let outcome = await fixture.runner().run(deploy(hook, secret: nil), provider: "mistral", timeout: .seconds(10))
        #expect(outcome.failure?.code == "hook_spawn_failed")
        #expect(!FileManager.default.fileExists(atPath: fixture.file("ran")))
    }

    /// The test process carries what systemd and an operator's shell would give
    /// keyrotd; the hook must see none of it. The values are inert for anything
    /// else that might read them meanwhile, and are removed afterwards.
    @Test func environmentIsExactlyPathAndTheKeyrotdVariables() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("env", #"tr '\0' '\n' < /proc/$$/environ"#)
        let planted = [
            "NOTIFY_SOCKET": "/nonexistent/keyrotd-hook-test.sock", "WATCHDOG_PID": "1",
            "WATCHDOG_USEC": "30000000", "CREDENTIALS_DIRECTORY": "/nonexistent/keyrotd-hook-test",
            "MISTRAL_ADMIN_KEY": "hook-test-not-a-key", "INVOCATION_ID": "0123456789abcdef",
            "LISTEN_FDS": "0", "LISTEN_PID": "1",
        ]
        for (name, value) in planted { setenv(name, value, 1) }
        defer { for name in planted.keys { unsetenv(name) } }

        let runner = fixture.runner(searchPath: "/usr/bin:/bin")
        let outcome = await runner.run(
            deploy(hook, oldKeyID: nil), provider: "mistral", timeout: .seconds(10))
        #expect(outcome == .succeeded)
        let environment = Dictionary(
            fixture.recorder.lines("stdout").map { line -> (String, String) in
                let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            }, uniquingKeysWith: { $1 })
        #expect(environment == [
            "PATH": "/usr/bin:/bin", "KEYROTD_EVENT": "deploy", "KEYROTD_KEY": "dev-team",
            "KEYROTD_KEY_ID": "key-new", "KEYROTD_OLD_KEY_ID": "", "KEYROTD_GENERATION": "7",
            "KEYROTD_PROVIDER": "mistral",
        ])
    }

    /// Descriptors the daemon holds without O_CLOEXEC must not reach the hook.
    /// The hook lists what `ls` inherited; `ls`'s own handle on the directory it
    /// lists is recognised by its target and left out.
    @Test func onlyStandardDescriptorsAreOpenInTheHook() async throws {
        let fixture = try HookFixture()
        var leaked: [CInt] = []
        for _ in 0..<3 { leaked.append(open("/dev/null", O_RDONLY)) }
        var ends: [CInt] = [-1, -1]
        #expect(pipe(&ends) == 0)
        leaked += ends
        defer { for descriptor in leaked where descriptor >= 0 { close(descriptor) } }
        #expect(leaked.allSatisfy { $0 > 2 && fcntl($0, F_GETFD) & FD_CLOEXEC == 0 })

        let hook = try fixture.script("fds", "ls -l /proc/self/fd")
        let outcome = await fixture.runner().run(deploy(hook), provider: "mistral", timeout: .seconds(10))
        #expect(outcome == .succeeded)
        let open = fixture.recorder.lines("stdout").compactMap { line -> String? in
            guard let arrow = line.range(of: " -> ") else { return nil }
            let target = line[arrow.upperBound...]
            if target.hasPrefix("/proc/"), target.hasSuffix("/fd") { return nil }
            return line[..<arrow.lowerBound].split(separator: " ").last.map(String.init)
        }
        #expect(open.sorted() == ["0", "1", "2"])
    }

    @Test func runsInTheRootDirectoryInItsOwnSessionAndGroup() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("where", #"""
            pwd
            cut -d ')' -f 2 /proc/$$/stat | cut -d ' ' -f 4,5
            echo $$
            """#)
        let outcome = await fixture.runner().run(retire(hook), provider: "mistral", timeout: .seconds(10))
        #expect(outcome == .succeeded)
        let lines = fixture.recorder.lines("stdout")
        try #require(lines.count == 3)
        #expect(lines[0] == "/")
        #expect(lines[1] == "\(lines[2]) \(lines[2])", "process group and session are the hook's own pid")
        #expect(lines[2] != String(getsid(0)))
    }

    @Test func outputIsLoggedLineByLineWithTheSecretRedacted() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("talk", #"""
            IFS= read -r secret
            echo "deploying for $KEYROTD_KEY"
            echo "new key is $secret, really $secret"
            printf 'warning: %s\r\n' "$secret" >&2

            printf 'no newline at the end' >&2
            """#)
        let outcome = await fixture.runner().run(deploy(hook), provider: "mistral", timeout: .seconds(10))
        #expect(outcome == .succeeded)
        #expect(fixture.recorder.lines("stdout") == [
            "deploying for dev-team", "new key is <redacted>, really <redacted>",
        ])
        #expect(fixture.recorder.lines("stderr") == ["warning: <redacted>", "no newline at the end"])
        let secret = testSecret.withExposedText { $0 }
        for record in fixture.recorder.all {
            #expect(!record.message.contains(secret))
            #expect(!record.metadata.values.contains { $0.contains(secret) })
        }
        for record in fixture.recorder.all where record.stream != nil {
            #expect(record.level == (record.stream == "stdout" ? .info : .warning))
            #expect(record.metadata["hook"] == hook)
            #expect(record.metadata["key"] == "dev-team")
            #expect(record.metadata["event"] == "deploy")
        }
    }

    /// The first line is logged while the hook still runs: it waits for a file
    /// the test creates only after seeing that line.
    @Test func linesAreLoggedAsTheyArrive() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("stream", #"""
            echo early
            while [ ! -e "$DIR/go" ]; do sleep 0.02; done
            echo late
            """#)
        let runner = fixture.runner()
        let run = Task { await runner.run(retire(hook), provider: "mistral", timeout: .seconds(20)) }
        let sawEarly = await eventually { fixture.recorder.lines("stdout") == ["early"] }
        try writeRaw([], to: fixture.file("go"))
        #expect(sawEarly)
        #expect(await run.value == .succeeded)
        #expect(fixture.recorder.lines("stdout") == ["early", "late"])
    }

    /// Far more output than the limit and than a pipe holds: the hook is neither
    /// blocked nor failed, at most the limit is logged, and one line says so.
    @Test func outputPastTheLimitIsDroppedButDrained() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("chatty", #"""
            i=0
            while [ $i -lt 20000 ]; do echo "stdout line $i"; echo "stderr line $i" >&2; i=$((i + 1)); done
            """#)
        let outcome = await fixture.runner(outputLimit: 1000).run(
            retire(hook), provider: "mistral", timeout: .seconds(60))
        #expect(outcome == .succeeded)
        for stream in ["stdout", "stderr"] {
            let records = fixture.recorder.all.filter { $0.stream == stream }
            let lines = records.filter { !$0.message.hasPrefix("output truncated") }
            #expect(lines.map(\.message.utf8.count).reduce(0, +) <= 1000)
            #expect(lines.first?.message == "\(stream) line 0")
            #expect(records.filter { $0.message.hasPrefix("output truncated") }.count == 1)
            #expect(records.last?.message.hasPrefix("output truncated") == true)
        }
    }

    @Test func nonZeroExitFailsWithTheLastStderrLineRedacted() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("fail", #"""
            IFS= read -r secret
            echo "first problem" >&2
            echo "rejected $secret" >&2
            exit 3
            """#)
        let outcome = await fixture.runner().run(deploy(hook), provider: "mistral", timeout: .seconds(10))
        let failure = try #require(outcome.failure)
        #expect(failure.code == "hook_exit_3")
        #expect(failure.kind == .transient)
        #expect(failure.message.hasSuffix("rejected <redacted>"))
        #expect(failure.message.contains(hook))
    }

    @Test func deathBySignalIsReportedWithTheSignal() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("signal", "kill -USR1 $$")
        let outcome = await fixture.runner().run(retire(hook), provider: "mistral", timeout: .seconds(10))
        #expect(outcome.failure?.code == "hook_signal_\(SIGUSR1)")
        #expect(outcome.failure?.kind == .transient)
    }

    @Test func missingOrUnrunnableHooksAreNotExecutable() async throws {
        let fixture = try HookFixture()
        let notExecutable = fixture.file("plain")
        try writeRaw(Array("#!/bin/sh\nexit 0\n".utf8), to: notExecutable, mode: 0o644)
        let runner = fixture.runner()
        for path in [fixture.file("missing"), notExecutable, fixture.path, "relative/hook"] {
            let outcome = await runner.run(retire(path), provider: "mistral", timeout: .seconds(10))
            #expect(outcome.failure?.code == "hook_not_executable", "\(path)")
            #expect(outcome.failure?.kind == .transient)
        }
    }

    @Test func aScriptWithoutInterpreterLineCannotBeStarted() async throws {
        let fixture = try HookFixture()
        let hook = fixture.file("noshebang")
        try writeRaw(Array("echo hello\n".utf8), to: hook, mode: 0o755)
        let outcome = await fixture.runner().run(retire(hook), provider: "mistral", timeout: .seconds(10))
        #expect(outcome.failure?.code == "hook_spawn_failed")
    }

    @Test func alertHooksGetTheirEventAndVariablesAndNoStdin() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("alert", #"""
            cat > "$DIR/stdin"
            tr '\0' '\n' < /proc/$$/environ | sort > "$DIR/environ"
            echo "alert for $KEYROTD_KEY"
            """#)
        let outcome = await fixture.runner(searchPath: "/usr/bin:/bin").runAlert(
            path: hook, event: "failed",
            variables: [
                "KEYROTD_KEY": "dev-team", "KEYROTD_ERROR": "http_401", "KEYROTD_EVENT": "spoofed",
                "PATH": "/tmp", "HOME": "/root", "KEYROTD_lower": "x",
            ],
            timeout: .seconds(10))
        #expect(outcome == .succeeded)
        #expect(try fixture.text("stdin").isEmpty)
        #expect(try fixture.text("environ") == """
            KEYROTD_ERROR=http_401
            KEYROTD_EVENT=failed
            KEYROTD_KEY=dev-team
            PATH=/usr/bin:/bin

            """)
        let line = try #require(fixture.recorder.all.first { $0.stream == "stdout" })
        #expect(line.message == "alert for dev-team")
        #expect(line.metadata["key"] == "dev-team")
        #expect(line.metadata["event"] == "failed")
    }
}

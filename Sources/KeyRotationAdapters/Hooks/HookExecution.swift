import Logging
import Subprocess
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Everything one hook process is started from.
struct HookRequest: Sendable {
    var path: String
    /// The complete environment: nothing else is inherited.
    var environment: [String: String]
    /// Written to stdin before the start, then EOF.
    var input: [UInt8]
    /// Redacted from every output line; nil when the run carries no secret.
    var secret: [UInt8]?
    var timeout: Duration
    var metadata: Logger.Metadata
}

/// How the hook process ended, before it becomes a `HookOutcome`.
struct HookReport: Sendable, Equatable {
    enum End: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
        case timedOut
        case cancelled
        case notExecutable(String)
        /// Refused by `HookTrust` at the spawn: the whole sentence.
        case untrusted(String)
        case spawnFailed(String)
    }

    var end: End
    /// The last stderr line, redacted, for the failure message.
    var lastErrorLine: String?
}

extension HookRunner {
    /// How the process ended and the last stderr line, or why it could not run.
    private typealias ProcessResult = Result<(status: TerminationStatus, lastErrorLine: String?), any Error>

    /// Starts the hook, drains and logs its output, enforces the timeout, and does
    /// not return before its process group is gone (see `HookRunner`).
    ///
    /// The pieces: swift-subprocess spawns it (new session, cwd "/", only fds
    /// 0-2, the exact environment) and on task cancellation runs the teardown
    /// sequence SIGTERM to the group, SIGKILL to the group after `killGrace`. A
    /// watchdog child task does the same at the deadline without cancelling the
    /// run, so output written while the hook shuts down is still logged. Once the
    /// leader has been reaped, `ProcessGroup.terminateRemainingMembers` ends
    /// whatever it left behind.
    ///
    /// Right before the spawn `HookTrust` walks the hook's path again, and the
    /// process is started from the real path that walk verified, so a hook (or a
    /// directory above it) made writable by someone else, or swapped, after start
    /// or reload never runs and never sees the secret. Running the file through a
    /// descriptor instead (open, fstat, fexecve) is not possible here: hooks are
    /// mostly `#!` scripts, which the kernel can only hand to their interpreter as
    /// /dev/fd/N, so the descriptor would have to stay open in the hook (breaking
    /// "only fds 0-2"), and swift-subprocess offers no pre-exec hook on Linux.
    /// The walk is as strong: it passed only if every component of the real path
    /// is owned by root or keyrotd's user and writable by nobody else (sticky
    /// directories excepted, whose next entry must be owned by those two), so
    /// between the check and the exec only root or keyrotd itself could change
    /// what that path names, and either can change keyrotd's own binary anyway.
    func execute(_ request: HookRequest) async -> HookReport {
        let realPath: String
        do throws(HookTrust.Problem) {
            realPath = try HookTrust.verify(request.path)
        } catch {
            switch error {
            case .notExecutable(let reason): return HookReport(end: .notExecutable(reason))
            case .untrusted(let message): return HookReport(end: .untrusted(message))
            }
        }
        if Task.isCancelled { return HookReport(end: .cancelled) }
        let stdin: FileDescriptor
        do {
            stdin = try HookStandardInput.pipe(containing: request.input)
        } catch {
            return HookReport(end: .spawnFailed("could not prepare its stdin: \(error)"))
        }
        defer { try? stdin.close() }

        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: killGrace)]
        let configuration = Configuration(
            executable: .path(FilePath(realPath)),
            arguments: Arguments(executablePathOverride: request.path, remainingValues: []),
            environment: .custom(Dictionary(
                uniqueKeysWithValues: request.environment.map { (Environment.Key(stringLiteral: $0.key), $0.value) })),
            workingDirectory: FilePath("/"),
            platformOptions: options)

        let control = HookRunControl()
        let (leaders, leaderContinuation) = AsyncStream.makeStream(
            of: ProcessGroup.self, bufferingPolicy: .bufferingNewest(1))
        let deadline = ContinuousClock.now + request.timeout

        let finished = await withTaskGroup(of: ProcessResult?.self) { group in
            group.addTask {
                defer { leaderContinuation.finish() }
                do {
                    let result = try await Subprocess.run(
                        configuration, input: .fileDescriptor(stdin, closeAfterSpawningProcess: false),
                        output: .sequence, error: .sequence
                    ) { execution in
                        let leader = ProcessGroup(id: execution.processIdentifier.value)
                        control.started(leader)
                        leaderContinuation.yield(leader)
                        return await self.drain(
                            stdout: execution.standardOutput, stderr: execution.standardError, request: request)
                    }
                    return .success((status: result.terminationStatus, lastErrorLine: result.closureResult))
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                await self.watch(leaders, until: deadline, control: control, metadata: request.metadata)
                return nil
            }
            var finished: ProcessResult?
            for await result in group {
                guard let result else { continue }
                finished = result
                group.cancelAll()  // the watchdog
            }
            return finished
        }
        let cancelled = Task.isCancelled

        if let leader = control.leader {
            let killed = await leader.terminateRemainingMembers(deadline: (control.timedOutAt ?? .now) + killGrace)
            if killed {
                logger.warning(
                    "processes the hook left behind ignored SIGTERM; SIGKILL sent to its process group",
                    metadata: request.metadata)
            }
        }

        if control.timedOutAt != nil { return HookReport(end: .timedOut) }
        if cancelled { return HookReport(end: .cancelled) }
        switch finished {
        case .success(let (status, lastErrorLine)):
            switch status {
            case .exited(let code): return HookReport(end: .exited(code), lastErrorLine: lastErrorLine)
            case .signaled(let signal): return HookReport(end: .signalled(signal), lastErrorLine: lastErrorLine)
            }
        case .failure(let error):
            return HookReport(end: Self.spawnEnd(error))
        case nil:
            return HookReport(end: .spawnFailed("it ended without a status"))
        }
    }

    /// At the deadline: SIGTERM to the group, SIGKILL after `killGrace`. Returns
    /// early, sending nothing more, when cancelled because the run has finished.
    private func watch(
        _ leaders: AsyncStream<ProcessGroup>, until deadline: ContinuousClock.Instant, control: HookRunControl,
        metadata: Logger.Metadata
    ) async {
        do {
            try await Task.sleep(until: deadline, clock: .continuous)
        } catch {
            return
        }
        // The leader is known as soon as the spawn returns; nil means no process.
        var iterator = leaders.makeAsyncIterator()
        guard let group = await iterator.next() else { return }
        control.timedOut()
        logger.warning("hook timed out; SIGTERM sent to its process group", metadata: metadata)
        group.send(SIGTERM)
        do {
            try await Task.sleep(for: killGrace)
        } catch {
            return
        }
        logger.warning("hook still running after SIGTERM; SIGKILL sent to its process group", metadata: metadata)
        group.send(SIGKILL)
    }

    /// Reads stdout and stderr concurrently to their end (or until the leader
    /// exits and swift-subprocess stops the reads), logging each line as it
    /// completes. Returns the last stderr line.
    private func drain(stdout: SubprocessOutputSequence, stderr: SubprocessOutputSequence, request: HookRequest) async
        -> String?
    {
        await withTaskGroup(of: String?.self) { group in
            group.addTask {
                _ = await self.drain(stdout, stream: "stdout", level: .info, request: request)
                return nil
            }
            group.addTask {
                await self.drain(stderr, stream: "stderr", level: .warning, request: request)
            }
            var lastErrorLine: String?
            for await line in group where line != nil { lastErrorLine = line }
            return lastErrorLine
        }
    }

    private func drain(_ output: SubprocessOutputSequence, stream: String, level: Logger.Level, request: HookRequest)
        async -> String?
    {
        var lines = HookOutputLines(limit: outputLimit, secret: request.secret)
        var metadata = request.metadata
        metadata["stream"] = .string(stream)
        do {
            for try await buffer in output {
                log(buffer.withUnsafeBytes { lines.consume($0) }, level: level, metadata: metadata)
            }
        } catch {
            logger.warning("could not read the hook's \(stream): \(error)", metadata: metadata)
        }
        log(lines.finish(), level: level, metadata: metadata)
        return lines.lastLine
    }

    private func log(_ items: [HookOutputLines.Item], level: Logger.Level, metadata: Logger.Metadata) {
        for item in items {
            switch item {
            case .line(let text):
                logger.log(level: level, Logger.Message(stringLiteral: text), metadata: metadata)
            case .truncated:
                logger.warning(
                    "output truncated: more than \(outputLimit) bytes on \(metadata["stream"]?.description ?? "a stream"); the rest is not logged",
                    metadata: metadata)
            }
        }
    }

    private static func spawnEnd(_ error: any Error) -> HookReport.End {
        guard let error = error as? SubprocessError else { return .spawnFailed("\(error)") }
        if error.code == .executableNotFound { return .notExecutable("is missing or not executable") }
        switch error.underlyingError {
        case .noSuchFileOrDirectory?, .permissionDenied?, .notDirectory?, .tooManySymbolicLinkLevels?:
            return .notExecutable("is missing or not executable (\(error))")
        case .execFormatError?:
            return .spawnFailed("not a valid executable; a script needs a #! line (\(error))")
        default:
            return .spawnFailed("\(error)")
        }
    }
}

/// What the run's tasks learn about the process, shared between them.
private final class HookRunControl: Sendable {
    private struct State {
        var leader: ProcessGroup?
        var timedOutAt: ContinuousClock.Instant?
    }

    private let state = Mutex(State())

    var leader: ProcessGroup? { state.withLock { $0.leader } }
    /// When the watchdog sent SIGTERM; nil if the hook finished in time.
    var timedOutAt: ContinuousClock.Instant? { state.withLock { $0.timedOutAt } }

    func started(_ leader: ProcessGroup) { state.withLock { $0.leader = leader } }
    func timedOut() { state.withLock { $0.timedOutAt = .now } }
}

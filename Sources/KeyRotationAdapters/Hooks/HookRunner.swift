import KeyRotation
import Logging

/// How one hook run ended.
public enum HookOutcome: Sendable, Equatable {
    case succeeded
    /// Always `.transient`: the step is retried with backoff; the old key stays valid.
    case failed(StepFailure)
}

/// Runs hook executables under the hook contract (the README's "Hooks" section).
///
/// Each run:
/// - first walks `path` again with `HookTrust` (owner and write rules for every
///   component from /); a hook that fails is not started (`hook_untrusted`);
/// - executes the absolute `path`, as the real path that walk verified, with no
///   arguments (argv is just the configured path), in
///   working directory "/", in a new session and process group;
/// - gives it exactly `PATH` (the runner's `searchPath`) and the `KEYROTD_*`
///   variables, nothing inherited from keyrotd (no `NOTIFY_SOCKET`, no
///   credentials, no admin key);
/// - gives it only descriptors 0, 1 and 2; stdin holds the secret and a newline
///   on deploy, and is empty otherwise (EOF at once). The secret is never in
///   argv or the environment;
/// - logs stdout (`.info`) and stderr (`.warning`) line by line as they arrive,
///   with the secret redacted, metadata `hook`, `key`, `stream`, `event`; at most
///   `outputLimit` bytes per stream are logged (then one "output truncated"
///   line), but the pipes are always drained so the hook never blocks on them;
/// - ends with the whole process group gone: past the timeout, or when the
///   calling task is cancelled, the group gets SIGTERM, then SIGKILL after
///   `killGrace`; processes a finished hook left behind (`cmd &`) get the same.
///
/// `run` suspends for the hook's whole life: after a timeout at most `killGrace`
/// more; after a normal exit up to `killGrace` more while leftovers are ended;
/// after cancellation up to twice `killGrace` (the leader's grace, then the
/// leftovers'). It blocks no thread of the cooperative pool: swift-subprocess
/// waits on its own threads (epoll), and the grace periods are timers.
/// Concurrent runs are independent.
public struct HookRunner: Sendable {
    public static let defaultSearchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    let logger: Logger
    let searchPath: String
    let killGrace: Duration
    let outputLimit: Int

    /// `searchPath`: the PATH given to hooks (default "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").
    /// `killGrace`: how long a process group has between SIGTERM and SIGKILL.
    /// `outputLimit`: bytes of line text logged per stream and run.
    public init(
        logger: Logger, searchPath: String = HookRunner.defaultSearchPath, killGrace: Duration = .seconds(5),
        outputLimit: Int = 64 * 1024
    ) {
        self.logger = logger
        self.searchPath = searchPath
        self.killGrace = max(.zero, killGrace)
        self.outputLimit = max(0, outputLimit)
    }

    /// Runs one hook to completion, timeout, or task cancellation. Never throws: every
    /// failure is a StepFailure with a stable code: hook_exit_<n>, hook_signal_<n>,
    /// hook_timeout, hook_not_executable, hook_untrusted (someone besides root and
    /// keyrotd's user could change it: see `HookTrust`), hook_spawn_failed,
    /// hook_cancelled.
    ///
    /// A deploy without a secret is refused (`hook_spawn_failed`) rather than run
    /// with an empty stdin that a hook could take for a key.
    public func run(_ invocation: HookInvocation, provider: String, timeout: TimeSpan) async -> HookOutcome {
        let metadata: Logger.Metadata = [
            "hook": .string(invocation.path), "key": .string(invocation.key),
            "event": .string(invocation.event.rawValue),
        ]
        let input: [UInt8]
        switch invocation.event {
        case .deploy:
            guard let secret = invocation.secret, !secret.isEmpty else {
                return .failed(Self.failure(
                    "hook_spawn_failed", "hook \(invocation.path) not started: the deploy carries no secret"))
            }
            input = secret.withExposedText { Array($0.utf8) } + [UInt8(ascii: "\n")]
        case .retire:
            input = []
        }
        let environment = [
            "PATH": searchPath,
            "KEYROTD_EVENT": invocation.event.rawValue,
            "KEYROTD_KEY": invocation.key,
            "KEYROTD_KEY_ID": invocation.keyID,
            "KEYROTD_OLD_KEY_ID": invocation.oldKeyID ?? "",
            "KEYROTD_GENERATION": String(invocation.generation),
            "KEYROTD_PROVIDER": provider,
        ]
        let report = await execute(
            HookRequest(
                path: invocation.path, environment: environment, input: input,
                secret: invocation.secret.map { $0.withExposedText { Array($0.utf8) } },
                timeout: .milliseconds(timeout.milliseconds), metadata: metadata))
        return Self.outcome(of: report, path: invocation.path, timeout: timeout)
    }

    /// Alert hooks (issue later): same contract, `event` string and extra KEYROTD_* variables, empty stdin.
    ///
    /// `variables` may only add names of the form `KEYROTD_[A-Z0-9_]+`; `PATH`,
    /// `KEYROTD_EVENT` and any other name are dropped with a warning, so an
    /// alert cannot widen the environment contract. `KEYROTD_KEY`, when given,
    /// also tags the output lines.
    public func runAlert(path: String, event: String, variables: [String: String], timeout: TimeSpan) async
        -> HookOutcome
    {
        var environment = ["PATH": searchPath, "KEYROTD_EVENT": event]
        var metadata: Logger.Metadata = ["hook": .string(path), "event": .string(event)]
        for (name, value) in variables {
            guard Self.isAlertVariableName(name) else {
                logger.warning(
                    "alert variable dropped: not a KEYROTD_ name a hook may be given",
                    metadata: metadata.merging(["variable": .string(name)]) { $1 })
                continue
            }
            environment[name] = value
        }
        if let key = variables["KEYROTD_KEY"] { metadata["key"] = .string(key) }
        let report = await execute(
            HookRequest(
                path: path, environment: environment, input: [], secret: nil,
                timeout: .milliseconds(timeout.milliseconds), metadata: metadata))
        return Self.outcome(of: report, path: path, timeout: timeout)
    }

    static func isAlertVariableName(_ name: String) -> Bool {
        let prefix = "KEYROTD_"
        guard name.hasPrefix(prefix), name != "KEYROTD_EVENT", name.utf8.count > prefix.utf8.count else {
            return false
        }
        return name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
        }
    }

    static func outcome(of report: HookReport, path: String, timeout: TimeSpan) -> HookOutcome {
        switch report.end {
        case .exited(0):
            return .succeeded
        case .exited(let status):
            var message = "hook \(path) exited with status \(status)"
            if let line = report.lastErrorLine { message += ": \(line)" }
            return .failed(failure("hook_exit_\(status)", message))
        case .signalled(let signal):
            return .failed(failure("hook_signal_\(signal)", "hook \(path) was killed by signal \(signal)"))
        case .timedOut:
            return .failed(failure(
                "hook_timeout", "hook \(path) did not finish within \(timeout); its process group was terminated"))
        case .cancelled:
            return .failed(failure("hook_cancelled", "hook \(path) was cancelled; its process group was terminated"))
        case .notExecutable(let why):
            return .failed(failure("hook_not_executable", "hook \(path) \(why)"))
        case .untrusted(let message):
            return .failed(failure("hook_untrusted", "\(message); not run"))
        case .spawnFailed(let why):
            return .failed(failure("hook_spawn_failed", "hook \(path) could not be started: \(why)"))
        }
    }

    static func failure(_ code: String, _ message: String) -> StepFailure {
        StepFailure(kind: .transient, code: code, message: message)
    }
}

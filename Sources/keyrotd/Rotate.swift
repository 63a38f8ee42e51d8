import ArgumentParser
import Foundation
import KeyRotation
import KeyRotationAdapters

struct Rotate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the running daemon to rotate KEY now, with the normal overlap.",
        discussion: """
            Refused if a rotation of KEY is already in flight; a blocked step is retried at once. \
            With --wait, returns once the new key is deployed to every hook (the old key stays \
            valid for the overlap). Exit 0 done, 69 no daemon, 75 refused, blocked or timed out.
            """)

    @OptionGroup var request: KeyRequestOptions

    func run() throws {
        try request.send(.rotate)
    }
}

struct Revoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Emergency rotation of a compromised KEY: rotate now, delete the old key with no overlap.",
        discussion: """
            The old key is deleted as soon as the new one is verified and deployed; a rotation in \
            flight is joined and loses its overlap. With --wait, returns once every key that existed \
            at the request is deleted. Exit 0 done, 69 no daemon, 75 refused, blocked or timed out.
            """)

    @OptionGroup var request: KeyRequestOptions

    func run() throws {
        try request.send(.revoke)
    }
}

/// What `rotate` and `revoke` take: the key, waiting, and where the daemon is.
struct KeyRequestOptions: ParsableArguments {
    @Argument(help: "The managed key (a [keys.NAME] section).")
    var key: String
    @OptionGroup var wait: WaitOptions
    @OptionGroup var daemon: SocketOptions

    func send(_ command: ControlRequest.Command) throws {
        try OperatorRequest(command: command, key: key, wait: wait, socket: daemon.socketPath).run()
    }
}

struct WaitOptions: ParsableArguments {
    @Flag(help: "Wait for the outcome, printing each step.")
    var wait = false
    @Option(help: ArgumentHelp("With --wait: give up after this long (e.g. 90s, 30min).", valueName: "span"))
    var timeout: String = "30min"

    func validate() throws {
        do {
            _ = try TimeSpan(parsing: timeout)
        } catch {
            throw ValidationError("--timeout: \(error)")
        }
    }
}

/// `rotate` and `revoke`: send the request, then optionally follow the key's
/// progress by polling the daemon's status (which survives a daemon restart).
struct OperatorRequest {
    var command: ControlRequest.Command
    var key: String
    var wait: WaitOptions
    var socket: String

    func run() throws {
        let accepted = try Control.call(ControlRequest(command: command, key: key), socket: socket, expecting: KeyProgress.self)
        Console.line("\(key): \(accepted.message ?? accepted.phase.rawValue)")
        guard wait.wait else { return }
        let limit = Date() + ((try? TimeSpan(parsing: wait.timeout)) ?? .minutes(30))
        // The generation that ends the request: the pending one, or the second
        // emergency rotation a revoke in overlap queues.
        let target = (accepted.pendingGeneration ?? accepted.generation) + (accepted.revokeQueued ? 1 : 0)
        var said = ""
        var unreachableSince: Date?
        while true {
            Thread.sleep(forTimeInterval: 0.25)
            let progress: KeyProgress
            do {
                let all = try ControlClient.send(ControlRequest(command: .status), to: socket, expecting: [KeyProgress].self, timeout: .seconds(10))
                guard all.ok, let keys = all.result else {
                    // Stopping for a restart, or busy: the rotation resumes after it.
                    throw ControlClientError(code: .io, message: all.error?.message ?? "the daemon did not answer")
                }
                guard let mine = keys.first(where: { $0.key == key }) else {
                    Console.error("keyrotd: the daemon no longer manages \(key)")
                    throw ExitCode.temporaryFailure
                }
                progress = mine
                unreachableSince = nil
            } catch let error as ControlClientError {
                // A restart (systemd, a crash) takes a moment; the rotation resumes after it.
                if unreachableSince == nil {
                    unreachableSince = Date()
                    Console.error("keyrotd: \(error.message); still waiting")
                }
                if Date() > limit { return try giveUp() }
                continue
            }
            let line = describe(progress)
            if line != said {
                Console.line("\(key): \(line)")
                said = line
            }
            if progress.phase == .blocked {
                Console.error("keyrotd: \(key) is blocked until an operator acts; the daemon retries it (keyrotd status)")
                throw ExitCode.temporaryFailure
            }
            if done(progress, target: target) {
                Console.line("\(key): \(summary(progress))")
                return
            }
            if Date() > limit { return try giveUp() }
        }
    }

    private func done(_ progress: KeyProgress, target: Int) -> Bool {
        guard progress.generation >= target else { return false }
        switch command {
        case .revoke:
            return progress.phase == .idle && !progress.revoking && !progress.revokeQueued
        default:
            return progress.phase == .idle || progress.phase == .overlapping || progress.phase == .retiring
        }
    }

    private func describe(_ progress: KeyProgress) -> String {
        var line = progress.phase.rawValue
        if let generation = progress.pendingGeneration { line += " generation \(generation)" }
        if let error = progress.lastError { line += " (retrying after \(error.code): \(error.message))" }
        return line
    }

    private func summary(_ progress: KeyProgress) -> String {
        let current = "key \(progress.currentKeyID ?? "?") (generation \(progress.generation))"
        if command == .revoke { return "revoked: every earlier key is deleted; consumers hold \(current)" }
        if let old = progress.retiringKeyID, let at = progress.retireAt {
            return "\(current) deployed; old key \(old) is deleted \(Human.when(at, now: Date())) (\(Timestamp.format(at)))"
        }
        return "\(current) deployed"
    }

    private func giveUp() throws {
        Console.error("keyrotd: gave up waiting after \(wait.timeout); the daemon carries on (see keyrotd status)")
        throw ExitCode.temporaryFailure
    }
}

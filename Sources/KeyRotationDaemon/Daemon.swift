import CMalloc
import Dispatch
import Foundation
import KeyRotation
import KeyRotationAdapters
import Logging

/// Why the daemon could not start or had to stop; `exitCode` follows sysexits.
public struct DaemonFailure: Error, Sendable, CustomStringConvertible {
    public var exitCode: Int32
    public var description: String

    static func configuration(_ message: String) -> DaemonFailure { DaemonFailure(exitCode: 78, description: message) }
}

/// What the daemon needs from its surroundings.
public struct DaemonOptions: Sendable {
    public var configPath: String
    public var environment: [String: String]
    /// On SIGTERM, steps in flight get this long to finish before they are cancelled.
    public var shutdownGrace: Duration
    public var notifier: SystemdNotifier

    public init(
        configPath: String, environment: [String: String], shutdownGrace: Duration = .seconds(5),
        notifier: SystemdNotifier = SystemdNotifier()
    ) {
        self.configPath = configPath
        self.environment = environment
        self.shutdownGrace = shutdownGrace
        self.notifier = notifier
    }
}

/// `keyrotd run`: one loop owns every key's `RotationMachine`.
///
/// The loop takes events from one stream (wake-ups, step outcomes, signals),
/// feeds them to the machines, and performs the actions they return in order:
/// `.persist` writes the whole state file before the next side effect starts
/// (intent) and after each outcome; provider calls and hooks run as child tasks
/// whose outcomes come back through the same stream, so keys rotate
/// independently and a slow or failing key never stalls the others. Between
/// events it sleeps until the earliest deadline.
///
/// A failed state write means the next side effect may not start: the loop
/// retries the write before any awaited action and, if it still fails, hands the
/// machine a transient failure instead (backoff; nothing is lost, nothing runs
/// on unrecorded intent).
public final class Daemon {
    let options: DaemonOptions
    let logger: Logger
    let hooks: HookRunner
    var configuration: Configuration
    /// This deployment's name, fixed for the run (`InstanceChoice`): part of every
    /// provider key name it creates, and what tells its keys from another keyrotd's.
    let instance: String
    var providers: [String: any KeyProvider]
    var machines: [String: RotationMachine] = [:]
    /// Records the state file holds for keys no longer configured: kept as they are,
    /// never acted on (a removed key is never deleted at the provider by that).
    var unmanaged: [String: KeyRecord] = [:]
    let stateFile: StateFile
    let lock: StateFileLock
    var dirty = false
    /// Work has run since the heap was last trimmed (start-up counts).
    var heapHasGarbage = true
    /// Encodes only the records that changed since the last persist.
    var bodyWriter = StateBodyWriter()
    /// Keys with a side effect in flight. A machine is never replaced or dropped
    /// while its key is here: the outcome must reach the machine that asked for it.
    var running: Set<String> = []
    /// Keys removed by a reload while a step was in flight: dropped once it ends.
    var removing: Set<String> = []
    var draining = false
    var configRejected = false
    var lastStatus = ""
    let watchdogEvery: Duration?
    var lastPing = ContinuousClock.now
    let timeZone = TimeZone.current
    /// The loop's one event stream: wake-ups, outcomes, signals, control requests.
    let events: AsyncStream<LoopEvent>
    let continuation: AsyncStream<LoopEvent>.Continuation
    var control: ControlServer?
    /// The scheduled audit and budget check: what they remember, when they run next.
    var oversight: OversightSchedule
    /// Alert hook batches still running: a stop waits for them (within the grace),
    /// since their alerts are already recorded as raised.
    var alertBatches = 0
    /// The state as read at start; emptied once start-up has compared against it.
    var loaded = StateDocument()

    private init(
        options: DaemonOptions, logger: Logger, configuration: Configuration, instance: String,
        providers: [String: any KeyProvider], stateFile: StateFile, lock: consuming StateFileLock
    ) {
        self.options = options
        self.logger = logger
        self.configuration = configuration
        self.instance = instance
        self.providers = providers
        self.stateFile = stateFile
        self.lock = lock
        hooks = HookRunner(logger: logger)
        watchdogEvery = options.notifier.watchdogPingInterval
        (events, continuation) = AsyncStream.makeStream(of: LoopEvent.self)
        oversight = OversightSchedule(audit: AuditMemory(), budget: nil, now: Date(), auditEvery: configuration.audit.every)
    }

    /// Loads configuration, admin keys and state, takes the state lock, and
    /// builds a machine per configured key. Nothing has been done at the provider yet.
    public static func start(options: DaemonOptions, logger: Logger) throws(DaemonFailure) -> Daemon {
        let configuration = try loadConfiguration(options, logger: logger)
        let providers = try makeProviders(configuration, options: options, logger: logger)
        let stateFile = StateFile(path: configuration.daemon.resolvedStateFile(environment: options.environment))
        let lock = try lockState(stateFile, logger: logger)
        let document = try loadState(stateFile)
        if let problem = providerChanges(configuration, document: document).first {
            throw DaemonFailure.configuration(problem)
        }
        let choice = InstanceChoice.resolve(
            configured: configuration.daemon.instance, persisted: document.instance, draw: ProviderKeyName.randomInstance)
        switch choice.origin {
        case .persisted, .configured:
            break
        case .drawn:
            logger.notice(
                "this keyrotd's instance is \(choice.instance) (drawn at the first start, kept in the state file; [daemon] instance sets one): its keys are named keyrotd/\(choice.instance)/<key>/…",
                metadata: ["event": "instance-drawn"])
        case .configuredReplacing(let former):
            logger.warning(
                "[daemon] instance \(choice.instance) replaces the state file's instance \(former): keys the state knows stay managed; keys named keyrotd/\(former)/… it does not know count as another keyrotd's from now on (the audit reports them, nothing deletes them)",
                metadata: ["event": "instance-changed"])
        }
        let daemon = Daemon(
            options: options, logger: logger, configuration: configuration, instance: choice.instance,
            providers: providers, stateFile: stateFile, lock: lock)
        daemon.adopt(document)
        try daemon.listen()
        return daemon
    }

    private static func lockState(_ stateFile: StateFile, logger: Logger) throws(DaemonFailure) -> StateFileLock {
        do {
            try stateFile.prepareDirectory()
            let lock = try stateFile.lock()
            for name in try stateFile.removeLeftoverTemporaries(holding: lock) {
                logger.notice("removed a temporary file left by an interrupted state write", metadata: ["file": "\(name)"])
            }
            return lock
        } catch {
            throw failure(error)
        }
    }

    private static func loadState(_ stateFile: StateFile) throws(DaemonFailure) -> StateDocument {
        let loaded: (version: Int, body: [UInt8])?
        do {
            loaded = try stateFile.load(maxSupportedVersion: StateDocument.schemaVersion, checkingJSON: false)
        } catch {
            throw failure(error)
        }
        guard let (version, body) = loaded else { return StateDocument() }
        do {
            return try StateDocument.decode(body, version: version)
        } catch {
            throw DaemonFailure.configuration(
                "state file \(stateFile.path) passes its checksum but does not decode (\(error)); it was left untouched")
        }
    }

    /// A key keeps the provider its keys were created with: its current key lives
    /// there, and a delete sent elsewhere would answer 404 ("already gone").
    private static func providerChanges(_ configuration: Configuration, document: StateDocument) -> [String] {
        configuration.keys.compactMap { key in
            guard let was = document.keys[key.name]?.provider, was != key.provider else { return nil }
            return "key \(key.name) was rotated with provider \(was) but is now configured with \(key.provider); a key cannot move between providers (add it under a new name instead)"
        }
    }

    private static func failure(_ error: StateFileError) -> DaemonFailure {
        let code: Int32 = switch error.code {
        case .locked: 75
        case .permissionDenied: 77
        default: 78
        }
        return DaemonFailure(exitCode: code, description: error.description)
    }

    // MARK: - The loop

    /// Runs until SIGTERM or SIGINT; returns the exit status (0 after a clean stop).
    public func run() async -> Int32 {
        let continuation = self.continuation
        let queue = DispatchQueue(label: "keyrotd.wakeups")
        let signals = SignalSources([SIGTERM, SIGINT, SIGHUP], queue: queue) { continuation.yield(.signal($0)) }
        let timer = WakeTimer(queue: queue) { continuation.yield(.wake) }
        defer {
            signals.cancel()
            timer.cancel()
            control?.stop()
        }
        let names = machines.keys.sorted().joined(separator: ", ")
        logger.notice(
            "keyrotd running: instance \(instance), \(machines.count) key(s) (\(names)), state \(stateFile.path)",
            metadata: ["event": "daemon-started"])

        let spacing = configuration.daemon.catchUpSpacing
        var fleet = Array(machines.values)
        for event in Schedule.staggerOverdue(&fleet, now: Date(), spacing: spacing) { audit(event) }
        for machine in fleet { machines[machine.name] = machine }
        // Written at start only if start-up changed something (new keys, a changed
        // policy, the catch-up): at 1000 keys a write is ~40 ms before READY.
        if allRecords() != loaded.keys || loaded.instance != instance { persist() }
        loaded = StateDocument()
        malloc_trim(0)  // what reading the configuration and the state freed

        await withTaskGroup(of: Void.self) { group in
            tickDue(group: &group, continuation: continuation)
            startOversightIfDue(group: &group)
            notifier.ready(status: summary())
            lastStatus = summary()
            pingWatchdog()
            timer.schedule(at: nextWake())
            for await event in events {
                switch event {
                case .wake:
                    Failpoint.hangIfArmed(logger: logger)
                    if !draining {
                        tickDue(group: &group, continuation: continuation)
                        startOversightIfDue(group: &group)
                    }
                case .control(let request, let peer, let responder):
                    handle(request, from: peer, responder, group: &group)
                case .oversight(let outcome):
                    finish(outcome, group: &group)
                case .outcome(let key, let outcome):
                    running.remove(key)
                    feed(key, outcome, group: &group, continuation: continuation)
                    if removing.contains(key) { finishRemoval(key) }
                case .signal(SIGHUP):
                    notifier.reloading(status: "reloading configuration")
                    reload()
                    lastStatus = summary()
                    notifier.ready(status: lastStatus)
                    if !draining { tickDue(group: &group, continuation: continuation) }
                case .signal(let number):
                    if !draining { beginShutdown(signal: number, queue: queue, continuation: continuation) }
                case .graceExpired:
                    logger.warning("steps still running after the shutdown grace: cancelling them (they resume after restart)")
                    group.cancelAll()
                }
                pingWatchdog()
                if draining && running.isEmpty && alertBatches == 0 { break }
                if !draining { updateStatus() }
                releaseFreedMemoryWhenQuiet()
                timer.schedule(at: nextWake())
            }
            group.cancelAll()
        }
        persist()
        logger.notice("keyrotd stopped")
        return dirty ? 75 : 0
    }

    /// Hands the heap's free pages back to the kernel once nothing is in flight: glibc
    /// keeps what a burst of work freed (an audit's listing of the provider's keys, the
    /// responses and state bodies of a wave of rotations) for reuse, and an idle daemon
    /// would carry it in its RSS until the next burst. `malloc_trim` costs well under a
    /// millisecond here and runs once per quiet spell, not per event.
    func releaseFreedMemoryWhenQuiet() {
        let quiet = running.isEmpty && alertBatches == 0 && !oversight.auditRunning && !oversight.budgetRunning
        if !quiet {
            heapHasGarbage = true
        } else if heapHasGarbage {
            malloc_trim(0)
            heapHasGarbage = false
        }
    }

    /// The watchdog is pinged from the loop itself, so a hung loop stops pinging
    /// and systemd restarts it. Called after every event; the timer guarantees
    /// an event at least every ping interval.
    func pingWatchdog() {
        guard let every = watchdogEvery, ContinuousClock.now - lastPing >= every * 0.9 else { return }
        options.notifier.watchdogPing()
        lastPing = .now
    }

    var notifier: SystemdNotifier { options.notifier }

    /// The next instant the loop must run: a machine's deadline or a watchdog ping.
    func nextWake() -> Date? {
        if draining { return nil }
        var wake = [nextDeadline(), oversight.nextDeadline(spendWatched: hasSpendSource)].compactMap { $0 }.min()
        if let every = watchdogEvery {
            let ping = Date().addingTimeInterval(Self.seconds(every - (ContinuousClock.now - lastPing)))
            wake = min(wake ?? ping, ping)
        }
        return wake
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return max(0, TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18)
    }

    /// One line for `systemctl status`: "3 keys, next rotation dev-team in 41d, 0 failing".
    func summary() -> String {
        let now = Date()
        let failing = machines.values.filter { $0.record.lastError != nil }.count
        let rotating = machines.values.filter { $0.record.phase != .idle && $0.record.phase != .blocked }.count
        var parts = ["\(machines.count) key\(machines.count == 1 ? "" : "s")"]
        let next = machines.values.filter { $0.record.phase == .idle }
            .compactMap { machine in machine.record.nextDue.map { (machine.name, $0) } }
            .min { $0.1 < $1.1 }
        if let (name, due) = next { parts.append("next rotation \(name) \(Human.when(due, now: now))") }
        if rotating > 0 { parts.append("\(rotating) rotating") }
        parts.append("\(failing) failing")
        return (configRejected ? "config rejected (see journal); " : "") + parts.joined(separator: ", ")
    }

    func updateStatus() {
        let status = summary()
        guard status != lastStatus else { return }
        lastStatus = status
        notifier.status(status)
    }

    enum LoopEvent: Sendable {
        case wake
        case outcome(key: String, Event)
        case signal(Int32)
        case graceExpired
        case control(ControlRequest, ControlPeer, ControlResponder)
        case oversight(OversightOutcome)
    }

    func beginShutdown(signal: Int32, queue: DispatchQueue, continuation: AsyncStream<LoopEvent>.Continuation) {
        draining = true
        notifier.stopping(status: "stopping: \(running.count) step(s) in flight")
        logger.notice(
            "stopping on signal \(signal): \(running.count) step(s) in flight get \(options.shutdownGrace) to finish",
            metadata: ["event": "daemon-stopping"])
        queue.asyncAfter(deadline: .now() + Self.seconds(options.shutdownGrace)) { continuation.yield(.graceExpired) }
    }

    func nextDeadline() -> Date? {
        machines.values.compactMap(\.nextDeadline).min()
    }

    func tickDue(group: inout TaskGroup<Void>, continuation: AsyncStream<LoopEvent>.Continuation) {
        let now = Date()
        for name in machines.keys.sorted() where !removing.contains(name) {
            guard let deadline = machines[name]?.nextDeadline, deadline <= now else { continue }
            feed(name, .tick, group: &group, continuation: continuation)
        }
    }

    /// Feeds one event to a machine and performs its actions; returns the reasons
    /// of any operator request it refused.
    @discardableResult
    func feed(
        _ name: String, _ event: Event, group: inout TaskGroup<Void>, continuation: AsyncStream<LoopEvent>.Continuation
    ) -> [String] {
        guard var machine = machines[name] else { return [] }
        let actions = machine.handle(event, now: Date())
        machines[name] = machine
        var refusals: [String] = []
        for action in actions {
            switch action {
            case .persist:
                persist()
            case .emit(let event):
                audit(event)
                if event.kind == .blocked { alertBlocked(event, group: &group) }
            case .refuse(let reason):
                logger.notice("\(reason)", metadata: ["key": "\(name)"])
                refusals.append(reason)
            case .createKey, .listKeys, .verifyKey, .runHook, .deleteKey:
                if draining || removing.contains(name) { return refusals }
                if dirty { persist() }
                if dirty {
                    let failure = StepFailure(kind: .deferred, code: "state_write_failed", message: "the state file could not be written; the step waits until it can")
                    feed(name, .failed(failure), group: &group, continuation: continuation)
                    return refusals
                }
                start(action, for: name, group: &group, continuation: continuation)
            }
        }
        return refusals
    }

    /// Runs one side effect as a child task; its outcome comes back as an event.
    func start(
        _ action: Action, for name: String, group: inout TaskGroup<Void>, continuation: AsyncStream<LoopEvent>.Continuation
    ) {
        guard let key = configuration.key(named: name), let provider = providers[key.provider] else {
            let failure = StepFailure(kind: .deferred, code: "not_configured", message: "no configuration for key \(name)")
            feed(name, .failed(failure), group: &group, continuation: continuation)
            return
        }
        running.insert(name)
        let hooks = self.hooks
        let providerName = key.provider
        let now = Date()
        group.addTask {
            let outcome = await performStep(action, key: key, provider: provider, providerName: providerName, hooks: hooks, now: now)
            continuation.yield(.outcome(key: name, outcome))
        }
    }

    // MARK: - State

    func adopt(_ document: StateDocument) {
        loaded = document
        for key in configuration.keys {
            var record = document.keys[key.name] ?? KeyRecord(name: key.name, seed: UInt64.random(in: 0...UInt64.max))
            if record.provider == nil { record.provider = key.provider }
            var machine = RotationMachine(
                record: record, policy: key.policy, hooks: key.hooks, adopt: key.adopt, instance: instance,
                workspace: key.workspace, timeZone: timeZone)
            // The configuration may have changed while keyrotd was stopped.
            machine.apply(policy: key.policy, hooks: key.hooks, adopt: key.adopt)
            machines[key.name] = machine
        }
        oversight = OversightSchedule(
            audit: document.audit ?? AuditMemory(), budget: document.budget, now: Date(), auditEvery: configuration.audit.every)
        for (name, record) in document.keys where machines[name] == nil {
            unmanaged[name] = Self.unmanaged(record)
            logger.notice("the state file knows key \(name), which the configuration no longer names: kept, not managed", metadata: ["key": "\(name)"])
        }
    }

    func persist() {
        var keys = unmanaged
        for (name, machine) in machines { keys[name] = machine.record }
        do {
            let document = StateDocument(keys: keys, audit: oversight.audit, budget: oversight.budget, instance: instance)
            let body = try bodyWriter.body(of: document)
            Failpoint.hit(.persistBefore)
            try stateFile.save(body: body, version: StateDocument.schemaVersion)
            Failpoint.hit(.persistAfter)
            if dirty { logger.notice("the state file is written again") }
            dirty = false
        } catch {
            if !dirty { logger.error("cannot write the state file: \(error)") }
            dirty = true
        }
    }

    // MARK: - Configuration

    private static func loadConfiguration(_ options: DaemonOptions, logger: Logger) throws(DaemonFailure) -> Configuration {
        let loaded = ConfigLoader.load(path: options.configPath, environment: options.environment)
        for problem in loaded.warnings { logger.warning("\(problem.formatted(file: loaded.path))") }
        guard let configuration = loaded.configuration else {
            for problem in loaded.errors { logger.error("\(problem.formatted(file: loaded.path))") }
            throw DaemonFailure.configuration("\(loaded.path): \(loaded.errors.count) problem(s); configuration rejected")
        }
        return configuration
    }

    private static func makeProviders(
        _ configuration: Configuration, options: DaemonOptions, logger: Logger
    ) throws(DaemonFailure) -> [String: any KeyProvider] {
        var providers: [String: any KeyProvider] = [:]
        for (name, settings) in configuration.providers {
            let (adminKey, origin): (Secret, AdminKeyOrigin)
            do {
                (adminKey, origin) = try AdminKey.resolve(settings, environment: options.environment)
            } catch {
                throw DaemonFailure.configuration(error.description)
            }
            if origin == .environment {
                logger.warning("provider \(name): using the admin key from MISTRAL_ADMIN_KEY (interactive use only; under systemd use LoadCredential=)")
            }
            let http: HTTPClient
            do {
                http = HTTPClient(totalTimeout: .milliseconds(settings.timeout.milliseconds), egress: try HTTPEgress(settings.egress))
                try http.selfCheck()
            } catch {
                throw DaemonFailure.configuration("provider \(name): \(error)")
            }
            switch settings.type {
            case .mistral:
                providers[name] = MistralProvider(
                    baseURL: settings.baseURL, adminKey: adminKey, requestsPerMinute: settings.requestsPerMinute, http: http)
            }
        }
        return providers
    }

    /// SIGHUP: a valid configuration is applied (new keys start, changed policies
    /// apply from the next due time, removed keys stop being managed — once a step
    /// in flight has ended — and are never deleted at the provider); an invalid one
    /// is logged in full and the running configuration stays.
    func reload() {
        let loaded = ConfigLoader.load(path: options.configPath, environment: options.environment)
        guard let next = loaded.configuration else {
            for problem in loaded.errors { logger.error("\(problem.formatted(file: loaded.path))") }
            reject("\(loaded.errors.count) problem(s)")
            return
        }
        var document = StateDocument(keys: unmanaged)
        for (name, machine) in machines { document.keys[name] = machine.record }
        if let problem = Self.providerChanges(next, document: document).first {
            logger.error("\(problem)")
            reject(problem)
            return
        }
        let providers: [String: any KeyProvider]
        do {
            providers = try Self.makeProviders(next, options: options, logger: logger)
        } catch {
            reject(error.description)
            return
        }
        self.providers = providers
        let socket = next.daemon.resolvedControlSocket(environment: options.environment)
        if let named = next.daemon.instance, named != instance {
            logger.warning("[daemon] instance changed to \(named): takes effect at the next start; still running as \(instance)")
        }
        if socket != control?.path {
            logger.warning("[daemon] control_socket changed to \(socket): takes effect at the next start; still listening on \(control?.path ?? "-")")
        }
        configuration = next
        configRejected = false
        for key in next.keys {
            removing.remove(key.name)
            if var machine = machines[key.name] {
                machine.apply(policy: key.policy, hooks: key.hooks, adopt: key.adopt)
                machine.workspace = key.workspace
                machines[key.name] = machine
            } else {
                var record = unmanaged.removeValue(forKey: key.name) ?? KeyRecord(name: key.name, seed: UInt64.random(in: 0...UInt64.max))
                if record.provider == nil { record.provider = key.provider }
                var machine = RotationMachine(
                    record: record, policy: key.policy, hooks: key.hooks, adopt: key.adopt, instance: instance,
                    workspace: key.workspace, timeZone: timeZone)
                machine.apply(policy: key.policy, hooks: key.hooks, adopt: key.adopt)
                machines[key.name] = machine
            }
        }
        for name in machines.keys.sorted() where next.key(named: name) == nil {
            if running.contains(name) {
                removing.insert(name)
            } else {
                finishRemoval(name)
            }
        }
        persist()
        logger.notice("configuration reloaded: \(machines.count - removing.count) key(s)", metadata: ["event": "config-reloaded"])
    }

    func reject(_ reason: String) {
        configRejected = true
        logger.error(
            "configuration rejected on reload: \(reason); still running the previous one",
            metadata: ["event": "config-rejected"])
    }

    /// A removed key's record stays in the state file, unmanaged, without a secret
    /// (the key it belongs to is left alone at the provider).
    func finishRemoval(_ name: String) {
        removing.remove(name)
        guard let machine = machines.removeValue(forKey: name) else { return }
        unmanaged[name] = Self.unmanaged(machine.record)
        logger.notice(
            "key \(name) removed from the configuration: no longer managed (its provider keys are left alone)",
            metadata: ["key": "\(name)"])
        persist()
    }

    /// A record kept for a key the configuration no longer names. A new key's secret
    /// that never reached its consumers is dropped: nothing will deploy it, and the
    /// state file would otherwise hold it forever. Whether the key was removed by a
    /// reload or while keyrotd was stopped, the record ends up the same.
    static func unmanaged(_ record: KeyRecord) -> KeyRecord {
        var record = record
        record.pending?.secret = nil
        return record
    }

    // MARK: - Audit trail

    func audit(_ event: AuditEvent) {
        var metadata: Logger.Metadata = ["key": "\(event.key)", "event": "\(event.kind.rawValue)"]
        if let id = event.keyID { metadata["key_id"] = "\(id)" }
        if let id = event.oldKeyID { metadata["old_key_id"] = "\(id)" }
        if let generation = event.generation { metadata["generation"] = "\(generation)" }
        if let failure = event.failure { metadata["error"] = "\(failure.code)" }
        let level: Logger.Level = switch event.kind {
        case .blocked: .error
        case .stepFailed, .orphanFound, .retirementExtended, .retirementForced: .warning
        case .rotationStarted, .deployed, .keyRetired, .rotationCompleted, .revokeRequested, .rotateRequested, .adopted, .caughtUp: .notice
        default: .info
        }
        logger.log(level: level, "\(event.key): \(event.message)", metadata: metadata)
    }
}

/// Performs one side effect and turns its result into the machine's event.
private func performStep(
    _ action: Action, key: ManagedKey, provider: any KeyProvider, providerName: String, hooks: HookRunner, now: Date
) async -> Event {
    do {
        switch action {
        case .createKey(let name, let lifetime):
            Failpoint.hit(.createBefore)
            let created = try await provider.createKey(
                name: name, expiration: now + lifetime, workspace: key.workspace, user: key.user)
            Failpoint.hit(.createAfter)
            return .created(created)
        case .listKeys(let filter):
            Failpoint.hit(.listBefore)
            let keys = try await provider.listKeys(nameContains: filter)
            Failpoint.hit(.listAfter)
            return .listed(keys)
        case .verifyKey(_, let secret):
            Failpoint.hit(.verifyBefore)
            try await provider.verifyKey(secret: secret)
            Failpoint.hit(.verifyAfter)
            return .verified
        case .deleteKey(let id):
            Failpoint.hit(.deleteBefore)
            try await provider.deleteKey(id: id)
            Failpoint.hit(.deleteAfter)
            return .deleted(keyID: id)
        case .runHook(let invocation):
            let deploy = invocation.event == .deploy
            Failpoint.hit(deploy ? .deployHookBefore : .retireHookBefore)
            let outcome = await hooks.run(invocation, provider: providerName, timeout: key.policy.hookTimeout)
            if case .failed(let failure) = outcome { return .failed(failure) }
            Failpoint.hit(deploy ? .deployHookAfter : .retireHookAfter)
            return .hookSucceeded(path: invocation.path)
        case .persist, .emit, .refuse:
            return .tick
        }
    } catch {
        return .failed(error)
    }
}

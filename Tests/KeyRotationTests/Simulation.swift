import Foundation
import Testing
@testable import KeyRotation

let t0 = Date(timeIntervalSince1970: 1_790_000_000)  // 2026-09-21, a Monday
let utc = TimeZone(identifier: "UTC")!
let hooks = ["/hooks/a", "/hooks/b"]
/// The instance and workspace of the simulated deployment's key.
let testInstance = "inst-a"
let testWorkspace = "ws-a"

extension KeyPolicy {
    static let test = KeyPolicy(
        rotateEvery: .days(90), overlap: .hours(24), jitter: .hours(6), hookTimeout: .minutes(2),
        window: nil, maxOverlap: .days(7), retryInitial: .seconds(30), retryMax: .hours(1),
        blockedRetry: .hours(6))
}

/// A provider that remembers every key it ever created, live or deleted.
struct FakeProvider {
    struct Key {
        var id: String
        var name: String
        var secret: Secret
        var createdAt: Date
        var deletedAt: Date?
        var workspace: String
    }

    var keys: [String: Key] = [:]
    /// Consumers use these keys until the given instant: `last_used` is the
    /// later of that and creation, capped at now (and reported to the second,
    /// as the machine must only rely on its day).
    var usedUntil: [String: Date] = [:]
    private var counter = 0

    var live: [Key] { keys.values.filter { $0.deletedAt == nil }.sorted { $0.id < $1.id } }

    /// The machine's keys are created in `testWorkspace`.
    mutating func create(name: String, now: Date, workspace: String = testWorkspace) -> CreatedKey {
        counter += 1
        let id = "k\(counter)"
        let secret = Secret("sk-\(id)-\(UInt32.random(in: 0...UInt32.max))")
        keys[id] = Key(id: id, name: name, secret: secret, createdAt: now, workspace: workspace)
        return CreatedKey(id: id, name: name, secret: secret, createdAt: now)
    }

    func list(nameContains: String?, now: Date) -> [ListedKey] {
        live.filter { nameContains == nil || $0.name.contains(nameContains!) }
            .map {
                ListedKey(
                    id: $0.id, name: $0.name, createdAt: $0.createdAt, workspaceID: $0.workspace,
                    lastUsed: usedUntil[$0.id].map { min($0, now) })
            }
    }

    func accepts(_ secret: Secret) -> Bool {
        live.contains { $0.secret == secret }
    }

    mutating func delete(_ id: String, now: Date) {
        if keys[id]?.deletedAt == nil { keys[id]?.deletedAt = now }
    }
}

/// The consumer the deploy hooks feed.
struct FakeConsumer {
    var secret: Secret?
    /// key id -> first time every hook had deployed it.
    var deployedAt: [String: Date] = [:]
    var hookRuns: [HookInvocation] = []
}

struct Crash: Error {}

/// Drives one machine against the fakes with a manual clock, performing its
/// actions the way the daemon loop does, and can "crash" after any action:
/// everything not persisted is lost, the provider and consumer keep what happened.
struct Simulation {
    var now = t0
    var provider = FakeProvider()
    var consumer = FakeConsumer()
    var persisted: KeyRecord
    var machine: RotationMachine
    var policy: KeyPolicy
    var adopt: String?
    var actions = 0
    var crashAfter: Set<Int> = []
    var events: [AuditEvent] = []
    var refusals: [String] = []
    /// Fails the next performed action of that kind (and, for hooks, that path).
    var inject: [(match: Match, failure: StepFailure)] = []

    enum Match: Sendable {
        case create, list, verify, delete
        case hook(String)

        func matches(_ action: Action) -> Bool {
            switch (self, action) {
            case (.create, .createKey), (.list, .listKeys), (.verify, .verifyKey), (.delete, .deleteKey): true
            case (.hook(let path), .runHook(let hook)): hook.path == path
            default: false
            }
        }
    }
    private var queue: [Action] = []

    init(policy: KeyPolicy = .test, record: KeyRecord? = nil, adopt: String? = nil) {
        self.policy = policy
        self.adopt = adopt
        let record = record ?? KeyRecord(name: "dev-team", seed: 42)
        persisted = record
        machine = RotationMachine(record: record, policy: policy, hooks: hooks, adopt: adopt, instance: testInstance, workspace: testWorkspace, timeZone: utc)
    }

    /// Sends an event now (operator requests, or a tick).
    /// A crash while handling it restarts, as `run` does (the request may be lost,
    /// like any request that was not yet persisted).
    mutating func send(_ event: Event) throws {
        queue += machine.handle(event, now: now)
        do {
            try drain()
        } catch is Crash {
            restart()
        }
    }

    /// Runs until `done` holds with nothing in flight, advancing the clock to
    /// each deadline; restarts after every crash point.
    mutating func run(maxSteps: Int = 10_000, until done: (Simulation) -> Bool) throws {
        var steps = 0
        while true {
            steps += 1
            precondition(steps < maxSteps, "simulation does not settle: \(machine.record)")
            do {
                try drain()
            } catch is Crash {
                restart()
                continue
            }
            if done(self) && !machine.awaiting { return }
            guard let deadline = machine.nextDeadline else {
                preconditionFailure("machine awaits an outcome but no action is queued")
            }
            now = max(now, deadline)
            queue += machine.handle(.tick, now: now)
        }
    }

    mutating func restart() {
        queue = []
        let document = StateDocument(keys: [persisted.name: persisted])
        let decoded = try! StateDocument.decode(try! document.encoded(), version: StateDocument.schemaVersion)
        persisted = decoded.keys[persisted.name]!
        machine = RotationMachine(record: persisted, policy: policy, hooks: hooks, adopt: adopt, instance: testInstance, workspace: testWorkspace, timeZone: utc)
        now = now + .seconds(1)
    }

    private mutating func drain() throws {
        while !queue.isEmpty {
            let action = queue.removeFirst()
            let event = perform(action)
            actions += 1
            if crashAfter.contains(actions) { throw Crash() }
            if let event { queue += machine.handle(event, now: now) }
        }
    }

    private mutating func perform(_ action: Action) -> Event? {
        if case .runHook(let hook) = action { consumer.hookRuns.append(hook) }
        checkIntentWasPersisted(action)
        if let index = inject.firstIndex(where: { $0.match.matches(action) }) {
            let failure = inject.remove(at: index).failure
            return .failed(failure)
        }
        switch action {
        case .persist:
            persisted = machine.record
            return nil
        case .emit(let event):
            events.append(event)
            return nil
        case .refuse(let why):
            refusals.append(why)
            return nil
        case .createKey(let name, _):
            return .created(provider.create(name: name, now: now))
        case .listKeys(let filter):
            return .listed(provider.list(nameContains: filter, now: now))
        case .verifyKey(_, let secret):
            return provider.accepts(secret)
                ? .verified : .failed(StepFailure(kind: .transient, code: "http_401", message: "rejected"))
        case .runHook(let hook):
            if hook.event == .deploy, let secret = hook.secret {
                consumer.secret = secret
                if hook.path == hooks.last, consumer.deployedAt[hook.keyID] == nil {
                    consumer.deployedAt[hook.keyID] = now
                }
            }
            return .hookSucceeded(path: hook.path)
        case .deleteKey(let id):
            provider.delete(id, now: now)
            return .deleted(keyID: id)
        }
    }

    var record: KeyRecord { machine.record }

    /// Property 2: the state file records a side effect's intent before it happens.
    private func checkIntentWasPersisted(_ action: Action) {
        switch action {
        case .createKey(let name, _):
            #expect(persisted.phase == .creating && persisted.pending?.name == name && persisted.pending?.createAttempted == true,
                    "create \(name) sent before its intent was persisted: \(persisted)")
        case .deleteKey(let id):
            let retiring = persisted.phase == .retiring && persisted.previous?.key.id == id
            let orphan = persisted.pending?.orphans.contains(id) == true || persisted.strays?.contains(id) == true
            #expect(retiring || orphan, "delete of \(id) sent before its intent was persisted: \(persisted)")
        case .runHook(let hook) where hook.event == .deploy:
            #expect(persisted.pending?.secret == hook.secret, "deploy before the secret was persisted")
        default:
            break
        }
    }
}

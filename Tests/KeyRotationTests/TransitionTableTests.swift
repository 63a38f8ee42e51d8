import Foundation
import Testing
@testable import KeyRotation

/// Every (phase, event) pair of the machine: the phase it lands in, the outcome it
/// then awaits, and whether an operator request was refused.
@Suite struct TransitionTableTests {
    enum Awaits: String, Sendable { case none, create, list, verify, hook, delete }

    enum EventKind: String, CaseIterable, Sendable {
        case tick, created, listed, verified, hookSucceeded, deleted, failedTransient, failedOperator, rotate, revoke
    }

    struct Row: Sendable, CustomTestStringConvertible {
        var phase: Phase
        var event: EventKind
        var then: Phase
        var awaits: Awaits
        var refused = false
        var revoking = false
        var ignored = false
        var testDescription: String { "\(phase.rawValue) + \(event.rawValue) -> \(then.rawValue)" }
    }

    /// Ignored events leave the machine exactly as it was.
    static func ignored(_ phase: Phase, _ awaits: Awaits, except: Set<EventKind>) -> [Row] {
        EventKind.allCases.filter { !except.contains($0) }.map { Row(phase: phase, event: $0, then: phase, awaits: awaits, ignored: true) }
    }

    static let rows: [Row] =
        // idle: waiting for the due time, nothing in flight.
        ignored(.idle, .none, except: [.rotate, .revoke]) + [
            Row(phase: .idle, event: .rotate, then: .creating, awaits: .create),
            Row(phase: .idle, event: .revoke, then: .creating, awaits: .create, revoking: true),
        ]
        // adopting: a list of all keys in flight.
        + ignored(.adopting, .list, except: [.listed, .failedTransient, .failedOperator, .rotate, .revoke]) + [
            Row(phase: .adopting, event: .listed, then: .idle, awaits: .none),
            Row(phase: .adopting, event: .failedTransient, then: .adopting, awaits: .none),
            Row(phase: .adopting, event: .failedOperator, then: .blocked, awaits: .none),
            Row(phase: .adopting, event: .rotate, then: .adopting, awaits: .list, refused: true),
            Row(phase: .adopting, event: .revoke, then: .adopting, awaits: .list, refused: true),
        ]
        // creating: the create call in flight.
        + ignored(.creating, .create, except: [.created, .failedTransient, .failedOperator, .rotate, .revoke]) + [
            Row(phase: .creating, event: .created, then: .verifying, awaits: .verify),
            Row(phase: .creating, event: .failedTransient, then: .creating, awaits: .none),
            Row(phase: .creating, event: .failedOperator, then: .blocked, awaits: .none),
            Row(phase: .creating, event: .rotate, then: .creating, awaits: .create, refused: true),
            Row(phase: .creating, event: .revoke, then: .creating, awaits: .create, revoking: true),
        ]
        // verifying: the verify call in flight.
        + ignored(.verifying, .verify, except: [.verified, .failedTransient, .failedOperator, .rotate, .revoke]) + [
            Row(phase: .verifying, event: .verified, then: .deploying, awaits: .hook),
            Row(phase: .verifying, event: .failedTransient, then: .verifying, awaits: .none),
            Row(phase: .verifying, event: .failedOperator, then: .blocked, awaits: .none),
            Row(phase: .verifying, event: .rotate, then: .verifying, awaits: .verify, refused: true),
            Row(phase: .verifying, event: .revoke, then: .verifying, awaits: .verify, revoking: true),
        ]
        // deploying: the first of two hooks in flight.
        + ignored(.deploying, .hook, except: [.hookSucceeded, .failedTransient, .failedOperator, .rotate, .revoke]) + [
            Row(phase: .deploying, event: .hookSucceeded, then: .deploying, awaits: .hook),
            Row(phase: .deploying, event: .failedTransient, then: .deploying, awaits: .none),
            Row(phase: .deploying, event: .failedOperator, then: .blocked, awaits: .none),
            Row(phase: .deploying, event: .rotate, then: .deploying, awaits: .hook, refused: true),
            Row(phase: .deploying, event: .revoke, then: .deploying, awaits: .hook, revoking: true),
        ]
        // overlapping: before the overlap ends, nothing in flight.
        + ignored(.overlapping, .none, except: [.rotate, .revoke]) + [
            Row(phase: .overlapping, event: .rotate, then: .overlapping, awaits: .none, refused: true),
            Row(phase: .overlapping, event: .revoke, then: .retiring, awaits: .delete, revoking: true),
        ]
        // retiring: the delete of the old key in flight.
        + ignored(.retiring, .delete, except: [.deleted, .failedTransient, .failedOperator, .rotate, .revoke]) + [
            Row(phase: .retiring, event: .deleted, then: .retiring, awaits: .hook),
            Row(phase: .retiring, event: .failedTransient, then: .retiring, awaits: .none),
            Row(phase: .retiring, event: .failedOperator, then: .blocked, awaits: .none),
            Row(phase: .retiring, event: .rotate, then: .retiring, awaits: .delete, refused: true),
            Row(phase: .retiring, event: .revoke, then: .retiring, awaits: .delete, revoking: true),
        ]
        // blocked (in creating): before its slow retry, nothing in flight.
        + ignored(.blocked, .none, except: [.rotate, .revoke]) + [
            Row(phase: .blocked, event: .rotate, then: .creating, awaits: .list),
            Row(phase: .blocked, event: .revoke, then: .creating, awaits: .list, revoking: true),
        ]

    @Test func theTableCoversEveryPair() {
        let pairs = Set(Self.rows.map { "\($0.phase.rawValue)/\($0.event.rawValue)" })
        #expect(pairs.count == Self.rows.count)
        #expect(pairs.count == Phase.allCases.count * EventKind.allCases.count)
    }

    @Test(arguments: rows)
    func transition(_ row: Row) throws {
        var (machine, now) = try Self.machine(in: row.phase)
        _ = now
        #expect(machine.record.phase == row.phase)
        let before = machine.record
        let actions = machine.handle(Self.event(row.event, machine: machine), now: now)
        #expect(machine.record.phase == row.then)
        #expect(Self.awaits(machine.inFlight) == row.awaits)
        #expect(actions.contains { if case .refuse = $0 { true } else { false } } == row.refused)
        #expect(machine.record.revoking == row.revoking)
        let awaited = actions.filter(\.awaitsOutcome)
        #expect(awaited.count <= 1 && (awaited.isEmpty || actions.last?.awaitsOutcome == true),
                "at most one awaited action, and it comes last: \(actions)")
        if row.ignored {
            #expect(machine.record == before, "an ignored event changes nothing")
            #expect(actions.isEmpty)
        }
        if machine.record != before && !actions.isEmpty {
            #expect(actions.contains(.persist), "every change is persisted")
        }
    }

    // MARK: - Fixtures

    static func awaits(_ action: Action?) -> Awaits {
        switch action {
        case nil: .none
        case .createKey?: .create
        case .listKeys?: .list
        case .verifyKey?: .verify
        case .runHook?: .hook
        case .deleteKey?: .delete
        default: .none
        }
    }

    /// A machine in `phase`, with the action that phase performs in flight, built by
    /// driving it there (so the fixture obeys the machine's own rules).
    static func machine(in phase: Phase) throws -> (RotationMachine, Date) {
        var sim = Simulation(adopt: phase == .adopting ? "k1" : nil)
        if phase == .adopting {
            _ = sim.provider.create(name: "adopted", now: t0 - .days(1))
            var machine = sim.machine
            _ = machine.handle(.tick, now: t0)
            return (machine, t0)
        }
        if phase == .idle {
            try sim.run { $0.record.generation == 1 }
            return (sim.machine, sim.now + .days(1))
        }
        if phase == .blocked {
            try sim.run { $0.record.generation == 1 }
            sim.now = try #require(sim.record.nextDue)
            sim.inject.append((match: .create, failure: StepFailure(kind: .needsOperator, code: "http_401", message: "no")))
            try sim.send(.tick)
            return (sim.machine, sim.now + .minutes(1))
        }
        if phase == .overlapping {
            try sim.run { $0.record.generation == 2 && $0.record.phase == .overlapping }
            return (sim.machine, sim.now + .hours(1))
        }
        // Step the machine one action at a time until it awaits the outcome of `phase`'s step.
        try sim.run { $0.record.generation == 1 }
        sim.now = try #require(sim.record.nextDue)
        var machine = sim.machine
        var pending = machine.handle(.tick, now: sim.now)
        var provider = sim.provider
        while true {
            if machine.record.phase == phase, machine.inFlight != nil { return (machine, sim.now) }
            guard let awaited = pending.last(where: \.awaitsOutcome) else {
                sim.now = try #require(machine.nextDeadline)
                pending = machine.handle(.tick, now: sim.now)
                continue
            }
            let event: Event
            switch awaited {
            case .createKey(let name, _): event = .created(provider.create(name: name, now: sim.now))
            case .verifyKey: event = .verified
            case .runHook(let hook): event = .hookSucceeded(path: hook.path)
            case .deleteKey(let id): event = .deleted(keyID: id)
            case .listKeys(let filter): event = .listed(provider.list(nameContains: filter, now: sim.now))
            default: throw Crash()
            }
            pending = machine.handle(event, now: sim.now)
        }
    }

    static func event(_ kind: EventKind, machine: RotationMachine) -> Event {
        let inFlight = machine.inFlight
        switch kind {
        case .tick: return .tick
        case .created: return .created(CreatedKey(id: "new", name: machine.record.pending?.name ?? "x", secret: Secret("s"), createdAt: t0))
        case .listed: return .listed([ListedKey(id: "k1", name: "adopted", createdAt: t0 - .days(1))])
        case .verified: return .verified
        case .hookSucceeded:
            if case .runHook(let hook)? = inFlight { return .hookSucceeded(path: hook.path) }
            return .hookSucceeded(path: hooks[0])
        case .deleted:
            if case .deleteKey(let id)? = inFlight { return .deleted(keyID: id) }
            return .deleted(keyID: "k1")
        case .failedTransient: return .failed(StepFailure(kind: .transient, code: "network", message: "reset"))
        case .failedOperator: return .failed(StepFailure(kind: .needsOperator, code: "http_401", message: "no"))
        case .rotate: return .rotateRequested
        case .revoke: return .revokeRequested
        }
    }
}

import Foundation

/// One key as `keyrotd status` shows it. Built from the configuration and the
/// state, both optional: a key may be configured but not yet in the state, or in
/// the state but no longer configured.
public struct KeyStatus: Sendable, Equatable, Encodable {
    public var name: String
    public var managed: Bool
    public var phase: String
    public var keyID: String?
    public var generation: Int
    public var createdAt: Date?
    public var ageSeconds: Int64?
    public var nextRotation: Date?
    public var attempts: Int
    public var retryAt: Date?
    public var lastError: StepFailure?
    public var pendingKeyID: String?
    public var retiringKeyID: String?
    public var retireAt: Date?
    public var revoking: Bool

    enum CodingKeys: String, CodingKey {
        case name, managed, phase, generation, attempts, revoking
        case keyID = "key_id"
        case createdAt = "created_at"
        case ageSeconds = "age_seconds"
        case nextRotation = "next_rotation"
        case retryAt = "retry_at"
        case lastError = "last_error"
        case pendingKeyID = "pending_key_id"
        case retiringKeyID = "retiring_key_id"
        case retireAt = "retire_at"
    }

    /// Encodes every field, nulls included, so the JSON shape never changes.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(managed, forKey: .managed)
        try c.encode(phase, forKey: .phase)
        try c.encode(keyID, forKey: .keyID)
        try c.encode(generation, forKey: .generation)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(ageSeconds, forKey: .ageSeconds)
        try c.encode(nextRotation, forKey: .nextRotation)
        try c.encode(attempts, forKey: .attempts)
        try c.encode(retryAt, forKey: .retryAt)
        try c.encode(lastError.map(ErrorJSON.init), forKey: .lastError)
        try c.encode(pendingKeyID, forKey: .pendingKeyID)
        try c.encode(retiringKeyID, forKey: .retiringKeyID)
        try c.encode(retireAt, forKey: .retireAt)
        try c.encode(revoking, forKey: .revoking)
    }

    struct ErrorJSON: Encodable {
        var code: String
        var kind: String
        var message: String
        init(_ failure: StepFailure) {
            code = failure.code
            kind = failure.kind.rawValue
            message = failure.message
        }
    }
}

/// One upcoming rotation as `keyrotd plan` shows it.
public struct PlannedRotation: Sendable, Equatable, Encodable {
    public var key: String
    /// nil: as soon as the daemon runs (no key yet, or a step ready now).
    public var at: Date?
    public var overdue: Bool
    /// What will happen, in a few words.
    public var what: String

    enum CodingKeys: String, CodingKey { case key, at, overdue, what }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(key, forKey: .key)
        try c.encode(at, forKey: .at)
        try c.encode(overdue, forKey: .overdue)
        try c.encode(what, forKey: .what)
    }
}

public enum Reports {
    /// Configured keys first (sorted), then keys only the state still knows.
    public static func status(configuration: Configuration?, document: StateDocument?, now: Date) -> [KeyStatus] {
        let configured = configuration?.keys.map(\.name) ?? []
        let stateOnly = (document?.keys.keys.sorted() ?? []).filter { !configured.contains($0) }
        return (configured + stateOnly).map { name in
            let record = document?.keys[name]
            let managed = configuration == nil || configured.contains(name)
            guard let record else {
                return KeyStatus(
                    name: name, managed: managed, phase: "new", keyID: nil, generation: 0, createdAt: nil,
                    ageSeconds: nil, nextRotation: nil, attempts: 0, retryAt: nil, lastError: nil,
                    pendingKeyID: nil, retiringKeyID: nil, retireAt: nil, revoking: false)
            }
            let phase = record.phase == .blocked ? "blocked (\(record.blockedStep?.rawValue ?? "?"))" : record.phase.rawValue
            return KeyStatus(
                name: name, managed: managed, phase: phase, keyID: record.current?.id,
                generation: record.generation, createdAt: record.current?.createdAt,
                ageSeconds: record.current.map { Int64(now.timeIntervalSince($0.createdAt)) },
                nextRotation: record.phase == .idle ? record.nextDue : nil,
                attempts: record.attempts, retryAt: record.retryAt, lastError: record.lastError,
                pendingKeyID: record.pending?.id, retiringKeyID: record.previous?.key.id,
                retireAt: record.previous?.retireAt, revoking: record.revoking)
        }
    }

    /// Upcoming work, soonest first: rotations due, overlaps ending, retries.
    public static func plan(configuration: Configuration?, document: StateDocument?, now: Date) -> [PlannedRotation] {
        var plan: [PlannedRotation] = []
        // Without a usable configuration, the state file alone still tells what is pending.
        let names = configuration?.keys.map(\.name) ?? document?.keys.keys.sorted() ?? []
        for name in names {
            let key = configuration?.key(named: name)
            guard let record = document?.keys[name] else {
                plan.append(PlannedRotation(
                    key: name, at: nil, overdue: false,
                    what: key?.adopt.map { "adopt existing key \($0)" } ?? "create the first key"))
                continue
            }
            switch record.phase {
            case .idle:
                guard let due = record.nextDue else {
                    plan.append(PlannedRotation(key: name, at: nil, overdue: false, what: "create the first key"))
                    continue
                }
                plan.append(PlannedRotation(
                    key: name, at: due, overdue: due <= now,
                    what: "rotate generation \(record.generation) -> \(record.generation + 1)"))
            case .overlapping:
                if let previous = record.previous {
                    plan.append(PlannedRotation(
                        key: name, at: previous.retireAt, overdue: previous.retireAt <= now,
                        what: "delete old key \(previous.key.id) (overlap ends)"))
                }
            case .blocked:
                plan.append(PlannedRotation(
                    key: name, at: record.retryAt, overdue: false,
                    what: "retry blocked \(record.blockedStep?.rawValue ?? "step"): \(record.lastError?.code ?? "")"))
            default:
                plan.append(PlannedRotation(
                    key: name, at: record.retryAt, overdue: false,
                    what: "resume \(record.phase.rawValue)" + (record.attempts > 0 ? " (attempt \(record.attempts + 1))" : "")))
            }
        }
        return plan.sorted { lhs, rhs in
            switch (lhs.at, rhs.at) {
            case (nil, nil): lhs.key < rhs.key
            case (nil, _): true
            case (_, nil): false
            case (let l?, let r?): (l, lhs.key) < (r, rhs.key)
            }
        }
    }
}

/// Time for people: "41d 3h", "in 5h 12min", "overdue 40s".
public enum Human {
    /// "41d 3h", "5h 12min", "40s": the largest unit and the next one down when it is not zero.
    public static func span(seconds: Int64) -> String {
        let units: [(String, Int64)] = [("d", 86400), ("h", 3600), ("min", 60), ("s", 1)]
        let rest = max(0, seconds)
        guard let first = units.firstIndex(where: { rest >= $0.1 }) else { return "0s" }
        let (name, size) = units[first]
        var text = "\(rest / size)\(name)"
        if first + 1 < units.count {
            let (nextName, nextSize) = units[first + 1]
            let next = (rest % size) / nextSize
            if next > 0 { text += " \(next)\(nextName)" }
        }
        return text
    }

    public static func when(_ date: Date, now: Date) -> String {
        let seconds = Int64(date.timeIntervalSince(now).rounded())
        if seconds >= 0 { return "in " + span(seconds: seconds) }
        return "overdue " + span(seconds: -seconds)
    }
}

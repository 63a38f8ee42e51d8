import Foundation

/// Due times. Pure: every instant comes in as an argument.
public enum Schedule {
    /// creation + rotate_every + jitterDraw × jitter, moved to the next opening of the window.
    public static func dueTime(created: Date, jitterDraw: Double, policy: KeyPolicy, timeZone: TimeZone) -> Date {
        let due = created + policy.rotateEvery + policy.jitter.multiplied(by: jitterDraw)
        return policy.window?.nextOpening(atOrAfter: due, in: timeZone) ?? due
    }

    /// The latest a rotation may start so that the current key, expiring at the provider
    /// at `expiresAt`, still works until its successor is deployed and the overlap has
    /// passed, with a day to spare for retries. A due time after it (a reload that
    /// lengthened `rotate_every` or `jitter` after the key was created with a shorter
    /// lifetime, or a window opening too late) is moved back to it, window or not:
    /// consumers holding an expired key is worse than a rotation outside the window.
    /// For a key created under the policy in force it binds only when a window opens more
    /// than six days after the due time: the lifetime covers rotate_every, jitter, the
    /// longest overlap and at least seven days more.
    public static func latestStart(expiresAt: Date?, policy: KeyPolicy) -> Date? {
        expiresAt.map { $0 - policy.overlap - .days(1) }
    }

    /// Overdue keys at start-up are caught up, never skipped: oldest first, started
    /// `spacing` apart from `now` so a fleet that was down does not rotate at once.
    public static func staggerOverdue(_ machines: inout [RotationMachine], now: Date, spacing: TimeSpan) -> [AuditEvent] {
        let overdue = machines.indices
            .filter { machines[$0].record.phase == .idle && machines[$0].record.current != nil }
            .filter { (machines[$0].record.nextDue ?? .distantFuture) <= now }
            .sorted { (machines[$0].record.nextDue ?? now, machines[$0].name) < (machines[$1].record.nextDue ?? now, machines[$1].name) }
        var events: [AuditEvent] = []
        for (slot, index) in overdue.enumerated() {
            let was = machines[index].record.nextDue ?? now
            // Slots count from the window's opening, so a window does not bunch them up again.
            let opening = machines[index].policy.window?.nextOpening(atOrAfter: now, in: machines[index].timeZone) ?? now
            machines[index].catchUp(startingAt: opening + spacing * Int64(slot))
            let start = machines[index].record.nextDue ?? now
            events.append(AuditEvent(
                .caughtUp, key: machines[index].name, keyID: machines[index].record.current?.id,
                generation: machines[index].record.generation,
                message: "overdue since \(Timestamp.format(was)); rotation starts \(Timestamp.format(start))"))
        }
        return events
    }
}

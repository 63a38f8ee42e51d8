import Foundation

/// Due times. Pure: every instant comes in as an argument.
public enum Schedule {
    /// creation + rotate_every + jitterDraw × jitter, moved to the next opening of the window.
    public static func dueTime(created: Date, jitterDraw: Double, policy: KeyPolicy, timeZone: TimeZone) -> Date {
        let due = created + policy.rotateEvery + policy.jitter.multiplied(by: jitterDraw)
        return policy.window?.nextOpening(atOrAfter: due, in: timeZone) ?? due
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

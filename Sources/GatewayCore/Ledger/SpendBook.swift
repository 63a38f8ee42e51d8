/// Spend of every role per month: what was settled with the provider's own usage figures,
/// and what requests still in flight may at most cost.
///
/// A reservation is taken before a request is forwarded and only if settled + reserved +
/// the new reservation fit the budget; it is settled with the real cost (never more than
/// it reserved: a request cannot cost more than its bound). So settled + reserved never
/// exceeds a budget, whatever the concurrency, as long as every change goes through one
/// `SpendBook` at a time (the store serialises them).
public struct SpendBook: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var settled: Money = .zero
        /// Outstanding reservations by id.
        public var reservations: [UInt64: Money] = [:]
        /// Alert thresholds (percent) already raised this month.
        public var alertsRaised: Set<Int> = []
        /// Requests settled this month, and their tokens.
        public var requests: Int = 0
        public var promptTokens: Int = 0
        public var completionTokens: Int = 0

        public init() {}

        public var reserved: Money { reservations.values.reduce(.zero, +) }
        /// What the month may already cost: settled plus every outstanding reservation.
        public var committed: Money { settled + reserved }
    }

    public struct Key: Sendable, Hashable {
        public var role: String
        public var month: BudgetMonth
        public init(role: String, month: BudgetMonth) {
            self.role = role
            self.month = month
        }
    }

    public private(set) var entries: [Key: Entry]
    /// The next reservation id; ids are unique within one book's life.
    public private(set) var nextReservation: UInt64

    public init(entries: [Key: Entry] = [:], nextReservation: UInt64 = 1) {
        self.entries = entries
        self.nextReservation = nextReservation
    }

    public enum ReserveOutcome: Sendable, Equatable {
        case reserved(id: UInt64)
        /// The reservation does not fit: `committed` is what the month holds already.
        case overBudget(committed: Money, budget: Money)
    }

    /// Reserves `amount` for `role` in `month` if it fits `budget` (nil: no budget, always fits).
    public mutating func reserve(role: String, month: BudgetMonth, amount: Money, budget: Money?) -> ReserveOutcome {
        let key = Key(role: role, month: month)
        var entry = entries[key] ?? Entry()
        if let budget, entry.committed + amount > budget {
            return .overBudget(committed: entry.committed, budget: budget)
        }
        let id = nextReservation
        nextReservation += 1
        entry.reservations[id] = amount
        entries[key] = entry
        return .reserved(id: id)
    }

    /// Replaces reservation `id` by `cost`, capped at what was reserved. Returns the alert
    /// thresholds of `alertAt` (percent of `budget`) that the month's settled spend has now
    /// reached for the first time; they are marked raised. Unknown ids change nothing.
    @discardableResult
    public mutating func settle(
        role: String, month: BudgetMonth, id: UInt64, cost: Money, usage: Usage?, budget: Money?, alertAt: [Int]
    ) -> [Int] {
        let key = Key(role: role, month: month)
        guard var entry = entries[key], let reserved = entry.reservations.removeValue(forKey: id) else { return [] }
        entry.settled = entry.settled + min(cost, reserved)
        entry.requests += 1
        if let usage {
            entry.promptTokens += usage.promptTokens
            entry.completionTokens += usage.completionTokens
        }
        var crossed: [Int] = []
        if let budget, budget.nanos > 0 {
            for threshold in alertAt where !entry.alertsRaised.contains(threshold) {
                // settled / budget >= threshold / 100, in integers.
                let spent = entry.settled.nanos.multipliedFullWidth(by: 100)
                let mark = budget.nanos.multipliedFullWidth(by: Int64(threshold))
                if (spent.high, spent.low) >= (mark.high, mark.low) {
                    entry.alertsRaised.insert(threshold)
                    crossed.append(threshold)
                }
            }
        }
        entries[key] = entry
        return crossed
    }

    /// After a crash: reservations nobody will settle are charged in full (the request may
    /// have reached the provider), so spend never undercounts.
    public mutating func chargeOutstandingReservations() {
        for key in entries.keys {
            guard var entry = entries[key], !entry.reservations.isEmpty else { continue }
            entry.settled = entry.settled + entry.reserved
            entry.reservations = [:]
            entries[key] = entry
        }
    }

    public func entry(role: String, month: BudgetMonth) -> Entry {
        entries[Key(role: role, month: month)] ?? Entry()
    }

    /// Forgets months before `month` (kept: the current and the previous one, for status).
    public mutating func dropMonths(before month: BudgetMonth) {
        entries = entries.filter { $0.key.month >= month }
    }
}

extension SpendBook {
    /// Drops reservation `id` without charging it (the request never reached the provider).
    public mutating func release(role: String, month: BudgetMonth, id: UInt64) {
        let key = Key(role: role, month: month)
        entries[key]?.reservations.removeValue(forKey: id)
    }

    /// Restores a book from its persisted form.
    public static func restored(entries: [Key: Entry], nextReservation: UInt64) -> SpendBook {
        SpendBook(entries: entries, nextReservation: nextReservation)
    }
}

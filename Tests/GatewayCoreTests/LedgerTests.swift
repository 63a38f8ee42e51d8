import Foundation
import GatewayCore
import Testing

@Suite struct BudgetMonthTests {
    @Test func monthsAgreeWithFoundationsUTCCalendar() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let seconds = Int64.random(in: -2_000_000_000...8_000_000_000, using: &generator)
            let date = Date(timeIntervalSince1970: TimeInterval(seconds))
            let parts = calendar.dateComponents([.year, .month], from: date)
            let month = BudgetMonth(secondsSinceEpoch: seconds)
            #expect(month.year == parts.year && month.month == parts.month, "\(seconds)")
            let next = calendar.date(byAdding: .month, value: 1, to: calendar.date(from: parts)!)!
            #expect(month.nextMonthStart == Int64(next.timeIntervalSince1970), "\(seconds)")
        }
    }

    @Test func boundariesAndText() {
        // 2026-12-31T23:59:59Z and one second later.
        #expect(BudgetMonth(secondsSinceEpoch: 1_798_761_599).description == "2026-12")
        #expect(BudgetMonth(secondsSinceEpoch: 1_798_761_600).description == "2027-01")
        #expect(BudgetMonth(year: 2026, month: 12).nextMonthStart == 1_798_761_600)
        #expect(BudgetMonth("2026-03") == BudgetMonth(year: 2026, month: 3))
        for bad in ["2026-13", "2026-3", "26-03", "2026-03-01", "", "abcd-ef"] { #expect(BudgetMonth(bad) == nil, "\(bad)") }
    }
}

@Suite struct SpendBookTests {
    let month = BudgetMonth(year: 2026, month: 12)

    @Test func aReservationThatDoesNotFitIsRefused() {
        var book = SpendBook()
        let budget = Money(nanos: 100)
        #expect(book.reserve(role: "a", month: month, amount: Money(nanos: 60), budget: budget) == .reserved(id: 1))
        #expect(
            book.reserve(role: "a", month: month, amount: Money(nanos: 41), budget: budget)
                == .overBudget(committed: Money(nanos: 60), budget: budget))
        #expect(book.reserve(role: "a", month: month, amount: Money(nanos: 40), budget: budget) == .reserved(id: 2))
        // Another role and another month have their own budgets.
        #expect(book.reserve(role: "b", month: month, amount: Money(nanos: 100), budget: budget) == .reserved(id: 3))
        #expect(
            book.reserve(role: "a", month: BudgetMonth(year: 2027, month: 1), amount: Money(nanos: 100), budget: budget)
                == .reserved(id: 4))
    }

    @Test func settlementsNeverExceedTheReservationAndFreeTheRest() {
        var book = SpendBook()
        let budget = Money(nanos: 100)
        _ = book.reserve(role: "a", month: month, amount: Money(nanos: 80), budget: budget)
        book.settle(role: "a", month: month, id: 1, cost: Money(nanos: 500), usage: nil, budget: budget, alertAt: [])
        #expect(book.entry(role: "a", month: month).settled == Money(nanos: 80))
        _ = book.reserve(role: "a", month: month, amount: Money(nanos: 20), budget: budget)
        book.settle(role: "a", month: month, id: 2, cost: Money(nanos: 5), usage: nil, budget: budget, alertAt: [])
        #expect(book.entry(role: "a", month: month).settled == Money(nanos: 85))
        #expect(book.reserve(role: "a", month: month, amount: Money(nanos: 15), budget: budget) == .reserved(id: 3))
        // Settling an unknown or already settled id changes nothing.
        book.settle(role: "a", month: month, id: 2, cost: Money(nanos: 5), usage: nil, budget: budget, alertAt: [])
        #expect(book.entry(role: "a", month: month).settled == Money(nanos: 85))
    }

    /// Random interleavings of reserves, settlements and releases, as concurrent requests
    /// produce them: settled + reserved never passes the budget.
    @Test func noInterleavingSpendsPastTheBudget() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var book = SpendBook()
            let budget = Money(nanos: Int64.random(in: 1...10_000, using: &generator))
            var open: [(UInt64, Money)] = []
            for _ in 0..<500 {
                switch Int.random(in: 0..<3, using: &generator) {
                case 0:
                    let amount = Money(nanos: Int64.random(in: 0...2_000, using: &generator))
                    if case .reserved(let id) = book.reserve(role: "r", month: month, amount: amount, budget: budget) {
                        open.append((id, amount))
                    }
                case 1 where !open.isEmpty:
                    let (id, amount) = open.remove(at: Int.random(in: 0..<open.count, using: &generator))
                    let cost = Money(nanos: Int64.random(in: 0...(amount.nanos * 2), using: &generator))
                    book.settle(role: "r", month: month, id: id, cost: cost, usage: nil, budget: budget, alertAt: [])
                case 2 where !open.isEmpty:
                    let (id, _) = open.remove(at: Int.random(in: 0..<open.count, using: &generator))
                    book.release(role: "r", month: month, id: id)
                default: break
                }
                #expect(book.entry(role: "r", month: month).committed <= budget)
            }
        }
    }

    @Test func eachThresholdIsCrossedOnce() {
        var book = SpendBook()
        let budget = Money(nanos: 1_000)
        var crossed: [[Int]] = []
        for id in UInt64(1)...10 {
            _ = book.reserve(role: "r", month: month, amount: Money(nanos: 100), budget: budget)
            crossed.append(
                book.settle(role: "r", month: month, id: id, cost: Money(nanos: 100), usage: nil, budget: budget, alertAt: [50, 80, 95]))
        }
        #expect(crossed.flatMap { $0 } == [50, 80, 95])
        #expect(crossed[4] == [50])
        #expect(crossed[7] == [80])
        #expect(crossed[9] == [95])
        #expect(book.entry(role: "r", month: month).alertsRaised == [50, 80, 95])
    }

    @Test func aCrashChargesOpenReservationsInFull() {
        var book = SpendBook()
        _ = book.reserve(role: "r", month: month, amount: Money(nanos: 70), budget: nil)
        _ = book.reserve(role: "r", month: month, amount: Money(nanos: 30), budget: nil)
        book.settle(role: "r", month: month, id: 1, cost: Money(nanos: 10), usage: nil, budget: nil, alertAt: [])
        book.chargeOutstandingReservations()
        let entry = book.entry(role: "r", month: month)
        #expect(entry.settled == Money(nanos: 40))
        #expect(entry.reservations.isEmpty)
    }
}

@Suite struct RateLimiterTests {
    let limits = RateLimiter.Limits(requestsPerMinute: 60, tokensPerMinute: 6_000)

    @Test func aFullBucketAdmitsItsLimitThenSaysHowLongToWait() {
        var limiter = RateLimiter()
        for _ in 0..<60 { #expect(limiter.admit(role: "r", tokens: 10, limits: limits, now: 0) == .admitted) }
        guard case .limited(let retryAfter, let limit) = limiter.admit(role: "r", tokens: 10, limits: limits, now: 0) else {
            Issue.record("the 61st request was admitted")
            return
        }
        #expect(retryAfter == 1)
        #expect(limit.contains("requests_per_minute"))
        // One request refills per second.
        #expect(limiter.admit(role: "r", tokens: 10, limits: limits, now: 1) == .admitted)
        #expect(limiter.admit(role: "r", tokens: 10, limits: limits, now: 1) != .admitted)
        // Other roles are not affected.
        #expect(limiter.admit(role: "other", tokens: 10, limits: limits, now: 1) == .admitted)
    }

    @Test func tokensAreChargedUpFrontAndRefunded() {
        var limiter = RateLimiter()
        #expect(limiter.admit(role: "r", tokens: 6_000, limits: limits, now: 0) == .admitted)
        guard case .limited(let retryAfter, _) = limiter.admit(role: "r", tokens: 1_000, limits: limits, now: 0) else {
            Issue.record("admitted past tokens_per_minute")
            return
        }
        #expect(retryAfter == 10)  // 1,000 tokens at 100 a second
        limiter.refund(role: "r", tokens: 5_000, limits: limits, now: 0)
        #expect(limiter.admit(role: "r", tokens: 1_000, limits: limits, now: 0) == .admitted)
        #expect(limiter.admit(role: "r", tokens: 6_001, limits: limits, now: 0) == .neverFits(tokens: 6_001, tokensPerMinute: 6_000))
    }

    @Test func noLimitsAdmitEverything() {
        var limiter = RateLimiter()
        let none = RateLimiter.Limits(requestsPerMinute: nil, tokensPerMinute: nil)
        for _ in 0..<10_000 { #expect(limiter.admit(role: "r", tokens: 1_000_000, limits: none, now: 0) == .admitted) }
        #expect(limiter.remaining(role: "r", limits: none, now: 0).requests == nil)
    }
}

import Foundation
import Glibc
import TestSupport
import Testing

/// A role's month spend never exceeds its budget, whatever the concurrency, and a crash
/// does not reset it.
@Suite(.serialized) struct GatewayBudgetTests {
    /// What the provider really served the role, priced as the gateway prices it
    /// (0.1 input, 0.3 output per million tokens; each rounded up to a nano-unit).
    static func providerSpend(_ server: MistralServer) async throws -> Int64 {
        try await server.requestLog().filter { ($0["path"] as? String) == "/v1/chat/completions" && ($0["status"] as? Int) == 200 }
            .reduce(Int64(0)) { sum, entry in
                let input = Int64(entry["prompt_tokens"] as? Int ?? 0)
                let output = Int64(entry["completion_tokens"] as? Int ?? 0)
                return sum + (input * 100_000_000 + 999_999) / 1_000_000 + (output * 300_000_000 + 999_999) / 1_000_000
            }
    }

    static func nanos(_ value: Any?) -> Int64 { Int64(((value as? Double) ?? 0) * 1e9 + 0.5) }

    @Test func fiftyParallelStreamsNeverSpendPastTheBudgetAndAKillDoesNotResetIt() async throws {
        // Each request reserves ≤ 0.000045 (its body bytes and 100 output tokens) and really
        // costs about 0.0000062: a budget of 0.0004 lets roughly 60 requests through.
        let fixture = try GatewayFixture(
            roles: [
                TestRole(
                    name: "team", upstreamKey: "dev-team", models: ["mistral-small-latest"],
                    extra: "max_tokens = 100\nmonthly_budget = 0.0004\nalert_at = [50, 80]"),
            ],
            clients: [("crew", "team")])
        let alertLog = fixture.scratch.file("alerts.log")
        let hook = try fixture.scratch.write("alert-hook", """
            #!/bin/sh
            echo "$KEYROTD_EVENT $KEYROTD_ROLE $KEYROTD_BUDGET_THRESHOLD $KEYROTD_BUDGET_MONTH" >> \(alertLog)

            """, mode: 0o755)
        fixture.extraClients = "\n[alerts]\nhooks = [\"\(hook)\"]\n"
        try fixture.rewriteConfig()
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        _ = try await fixture.server.control(.post, "/_control/options", ["completion_tokens": 20, "tokens_per_second": 100])

        // Bounded in time: a gateway that never says "budget" must fail here, not hang.
        let deadline = Date().addingTimeInterval(60)
        let outcome = await fixture.streamLoad(consumers: 50, client: "crew", stopOnBudget: true) { Date() > deadline }
        #expect(outcome.failed.isEmpty, "\(outcome.failed.prefix(5))")
        #expect(outcome.succeeded > 20, "the budget should have let many requests through")
        #expect(outcome.budgetRefused == 50)

        let budget: Int64 = 400_000
        let truth = try await Self.providerSpend(fixture.server)
        let role = try fixture.roleStatus("team")
        let spent = Self.nanos(role["spent"])
        #expect(Self.nanos(role["reserved"]) == 0)
        #expect(truth <= budget, "the provider served more than the budget: \(truth) > \(budget)")
        #expect(spent == truth, "the gateway's spend \(spent) is not what the provider served \(truth)")
        #expect(role["requests"] as? Int == outcome.succeeded)
        // Each threshold raised once, by the hook and in the log.
        let month = try fixture.status()["month"] as? String ?? "?"
        let alerts = ((try? String(contentsOfFile: alertLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        #expect(alerts.sorted() == ["budget team 50 \(month)", "budget team 80 \(month)"], "\(alerts)")
        #expect(fixture.log().components(separatedBy: "threshold 50%").count - 1 == 1)
        #expect(fixture.log().components(separatedBy: "threshold 80%").count - 1 == 1)

        await fixture.kill()
        try await fixture.start()
        let after = try fixture.roleStatus("team")
        #expect(Self.nanos(after["spent"]) == spent, "a SIGKILL changed the month's spend")
        #expect(after["alerts_raised"] as? [Int] == [50, 80])
        // What room settlements left below the budget is used, and no more.
        let again = await fixture.streamLoad(consumers: 50, client: "crew", stopOnBudget: true) { Date() > deadline.addingTimeInterval(60) }
        #expect(again.failed.isEmpty, "\(again.failed.prefix(5))")
        let finalTruth = try await Self.providerSpend(fixture.server)
        #expect(finalTruth <= budget, "after the restart the provider served more than the budget: \(finalTruth)")
        #expect(Self.nanos(try fixture.roleStatus("team")["spent"]) == finalTruth)
    }

    @Test func aKillWithStreamsInFlightChargesTheirReservationsInFull() async throws {
        let fixture = try GatewayFixture(
            roles: [
                TestRole(
                    name: "team", upstreamKey: "dev-team", models: ["mistral-small-latest"],
                    extra: "max_tokens = 100\nmonthly_budget = 1.0"),
            ],
            clients: [("crew", "team")])
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        // Slow streams: 20 tokens at 5 per second, so they are in flight when the gateway dies.
        _ = try await fixture.server.control(.post, "/_control/options", ["completion_tokens": 20, "tokens_per_second": 5])
        let stop = StopFlag()
        async let load = fixture.streamLoad(consumers: 10, client: "crew") { stop.isSet }
        try await Task.sleep(for: .seconds(2))
        let before = try fixture.roleStatus("team")
        #expect(Self.nanos(before["reserved"]) > 0, "no reservation was open")
        await fixture.kill()
        stop.set()
        _ = await load
        try await fixture.start()
        let after = try fixture.roleStatus("team")
        let truth = try await Self.providerSpend(fixture.server)
        // Never less than the provider served; never less than what was settled and reserved at the kill.
        #expect(Self.nanos(after["spent"]) >= truth)
        #expect(Self.nanos(after["spent"]) >= Self.nanos(before["spent"]) + Self.nanos(before["reserved"]))
        #expect(Self.nanos(after["reserved"]) == 0)
        #expect(fixture.log().contains("charged in full"))
    }
}

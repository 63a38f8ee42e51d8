import Foundation
import Testing
@testable import KeyRotation

@Suite struct BudgetTests {
    static let thresholds = [50, 80, 95]

    static func organization(_ percent: Double, limit: Double = 200) -> SpendFigure {
        SpendFigure(scope: .organization, spent: limit * percent / 100, limit: limit, currency: "EUR")
    }

    static func workspace(_ id: String, _ percent: Double) -> SpendFigure {
        SpendFigure(scope: .workspace, workspaceID: id, workspaceName: "Team \(id)", spent: percent, limit: 100, currency: "EUR")
    }

    static func date(_ text: String) throws -> Date {
        try #require(Timestamp.parse(text))
    }

    /// The thresholds raised by each successive reading.
    static func raised(_ readings: [[SpendFigure]], memory: inout BudgetMemory?, now: Date = t0) -> [[String]] {
        readings.map { figures in
            Budget.alerts(figures: figures, thresholds: thresholds, memory: &memory, now: now).map(\.id)
        }
    }

    @Test func risingUsageRaisesEachThresholdOnce() {
        var memory: BudgetMemory?
        let raised = Self.raised([10, 55, 60, 85, 96, 96].map { [Self.organization($0)] }, memory: &memory)
        #expect(raised == [[], ["organization@50"], [], ["organization@80"], ["organization@95"], []])
        #expect(memory == BudgetMemory(month: "2026-09", raised: ["organization@50", "organization@80", "organization@95"]))
    }

    @Test func aRestartRaisesNoneTwice() throws {
        var memory: BudgetMemory?
        var raised: [[String]] = []
        for percent in [10.0, 55, 60, 85, 96, 99] {
            // Each reading is taken by a fresh daemon that read its memory from the state file.
            let bytes = try StateDocument(budget: memory).encoded()
            memory = try StateDocument.decode(bytes, version: StateDocument.schemaVersion).budget
            raised += Self.raised([[Self.organization(percent)]], memory: &memory)
        }
        #expect(raised == [[], ["organization@50"], [], ["organization@80"], ["organization@95"], []])
    }

    @Test func aNewMonthRaisesAfresh() throws {
        var memory: BudgetMemory?
        let september = try Self.date("2026-09-30T23:59:59.999Z")
        let october = try Self.date("2026-10-01T00:00:00Z")
        #expect(Self.raised([[Self.organization(96)]], memory: &memory, now: september) == [["organization@50", "organization@80", "organization@95"]])
        #expect(Self.raised([[Self.organization(96)]], memory: &memory, now: september).joined().isEmpty)
        let alerts = Budget.alerts(figures: [Self.organization(60)], thresholds: Self.thresholds, memory: &memory, now: october)
        #expect(alerts.map(\.id) == ["organization@50"])
        #expect(alerts.map(\.month) == ["2026-10"])
        #expect(memory == BudgetMemory(month: "2026-10", raised: ["organization@50"]), "last month's alerts are forgotten")
    }

    @Test func aJumpRaisesEveryThresholdCrossedInIncreasingOrder() {
        var memory: BudgetMemory? = BudgetMemory(month: "2026-09")
        let alerts = Budget.alerts(figures: [Self.organization(97)], thresholds: [95, 50, 80], memory: &memory, now: t0)
        #expect(alerts.map(\.threshold) == [50, 80, 95])
        #expect(alerts.allSatisfy { $0.month == "2026-09" && $0.figure == Self.organization(97) })
    }

    @Test func theOrganizationAndEachWorkspaceAreTrackedSeparately() {
        var memory: BudgetMemory?
        let raised = Self.raised([
            [Self.organization(60), Self.workspace("a", 85), Self.workspace("b", 10)],
            [Self.organization(60), Self.workspace("a", 85), Self.workspace("b", 55)],
            [Self.organization(82), Self.workspace("a", 85), Self.workspace("b", 55)],
        ], memory: &memory)
        #expect(raised == [
            ["organization@50", "workspace:a@50", "workspace:a@80"],
            ["workspace:b@50"],
            ["organization@80"],
        ])
    }

    @Test func reachingAThresholdExactlyCrossesIt() {
        var memory: BudgetMemory?
        let figure = SpendFigure(scope: .organization, spent: 57, limit: 60, currency: nil)
        #expect(Budget.alerts(figures: [figure], thresholds: [95], memory: &memory, now: t0).map(\.threshold) == [95])
        var fresh: BudgetMemory?
        let below = SpendFigure(scope: .organization, spent: 56.99, limit: 60, currency: nil)
        #expect(Budget.alerts(figures: [below], thresholds: [95], memory: &fresh, now: t0).isEmpty)
        #expect(fresh == BudgetMemory(month: "2026-09"), "memory is created even when nothing is raised")
    }

    @Test(arguments: [
        (0, BudgetSeverity.notice), (50, .notice), (79, .notice), (80, .warning), (94, .warning),
        (95, .error), (99, .error), (100, .critical), (150, .critical),
    ])
    func severityRisesWithTheThreshold(threshold: Int, severity: BudgetSeverity) {
        #expect(Budget.severity(threshold: threshold) == severity)
    }

    @Test(arguments: [
        ("2026-09-21T14:13:20Z", "2026-09"), ("2026-09-30T23:59:59.999Z", "2026-09"),
        ("2026-10-01T00:00:00Z", "2026-10"), ("2026-10-01T01:30:00+02:00", "2026-09"),
        ("1970-01-01T00:00:00Z", "1970-01"), ("2027-12-31T12:00:00Z", "2027-12"),
    ])
    func theMonthIsTheUTCMonth(text: String, month: String) throws {
        #expect(Budget.month(of: try Self.date(text)) == month)
    }

    @Test func hookVariablesOfAWorkspaceAlert() {
        let figure = SpendFigure(
            scope: .workspace, workspaceID: "7f1e0c3a", workspaceName: "Product Team", spent: 85.456, limit: 100,
            currency: "USD")
        let alert = BudgetAlert(figure: figure, threshold: 80, month: "2026-09")
        #expect(Budget.hookVariables(alert) == [
            "KEYROTD_BUDGET_SCOPE": "workspace",
            "KEYROTD_WORKSPACE": "7f1e0c3a",
            "KEYROTD_WORKSPACE_NAME": "Product Team",
            "KEYROTD_BUDGET_THRESHOLD": "80",
            "KEYROTD_BUDGET_PERCENT": "85.5",
            "KEYROTD_BUDGET_SPENT": "85.46",
            "KEYROTD_BUDGET_LIMIT": "100.00",
            "KEYROTD_BUDGET_CURRENCY": "USD",
            "KEYROTD_BUDGET_MONTH": "2026-09",
        ])
    }

    @Test func hookVariablesOfAnOrganizationAlert() {
        let alert = BudgetAlert(figure: SpendFigure(scope: .organization, spent: 1000, limit: 1000, currency: nil), threshold: 100, month: "2026-10")
        #expect(Budget.hookVariables(alert) == [
            "KEYROTD_BUDGET_SCOPE": "organization",
            "KEYROTD_BUDGET_THRESHOLD": "100",
            "KEYROTD_BUDGET_PERCENT": "100.0",
            "KEYROTD_BUDGET_SPENT": "1000.00",
            "KEYROTD_BUDGET_LIMIT": "1000.00",
            "KEYROTD_BUDGET_MONTH": "2026-10",
        ], "no workspace, and no currency when the provider gave none")
        #expect(Budget.hookVariables(alert).keys.allSatisfy { $0.hasPrefix("KEYROTD_") })
    }

    @Test func twoProvidersAreTwoOrganisations() {
        var first = SpendFigure(scope: .organization, spent: 60, limit: 100, currency: "EUR")
        first.provider = "mistral-eu"
        var second = first
        second.provider = "mistral-us"
        var memory: BudgetMemory?
        let alerts = Budget.alerts(figures: [first, second], thresholds: [50], memory: &memory, now: Date(timeIntervalSince1970: 1_790_000_000))
        #expect(alerts.map(\.id) == ["mistral-eu:organization@50", "mistral-us:organization@50"])
        #expect(Budget.hookVariables(alerts[1])["KEYROTD_PROVIDER"] == "mistral-us")
    }
}

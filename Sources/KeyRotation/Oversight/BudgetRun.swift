import Foundation

/// How loudly a budget alert is logged: rising with the threshold crossed.
/// The daemon maps it to a journal priority (KeyRotation has no logging).
public enum BudgetSeverity: String, Sendable, Equatable, CaseIterable {
    case notice
    case warning
    case error
    case critical
}

/// Budget alerts: which thresholds a month's spend has crossed, each raised once
/// per scope and month. Pure: the caller reads the figures and passes the instant.
public enum Budget {
    /// `YYYY-MM` of `date` in UTC: providers bill by the UTC calendar month.
    public static func month(of date: Date) -> String {
        let parts = utcCalendar.dateComponents([.year, .month], from: date)
        return String(format: "%04d-%02d", parts.year ?? 1970, parts.month ?? 1)
    }

    /// Thresholds crossed (percent >= threshold) by each figure and not yet raised this month. A new month (memory
    /// nil or memory.month differs) starts afresh. Records the returned alerts in memory (creating/resetting it). If a
    /// jump crosses several thresholds at once, each is raised (in increasing order).
    ///
    /// Alerts come figure by figure, in the order of `figures`.
    public static func alerts(
        figures: [SpendFigure], thresholds: [Int], memory: inout BudgetMemory?, now: Date
    ) -> [BudgetAlert] {
        let month = month(of: now)
        var remembered = memory.flatMap { $0.month == month ? $0 : nil } ?? BudgetMemory(month: month)
        var raised = Set(remembered.raised)
        var alerts: [BudgetAlert] = []
        for figure in figures {
            for threshold in thresholds.sorted() where crossed(figure, threshold) {
                let alert = BudgetAlert(figure: figure, threshold: threshold, month: month)
                guard raised.insert(alert.id).inserted else { continue }
                alerts.append(alert)
                remembered.raised.append(alert.id)
            }
        }
        memory = remembered
        return alerts
    }

    /// Journal priority rising with the threshold: < 80 → notice, 80..<95 → warning, 95..<100 → error,
    /// >= 100 → critical (the limit is reached: the provider refuses requests).
    public static func severity(threshold: Int) -> BudgetSeverity {
        switch threshold {
        case ..<80: .notice
        case 80..<95: .warning
        case 95..<100: .error
        default: .critical
        }
    }

    /// The environment an alert hook gets (all KEYROTD_*): KEYROTD_BUDGET_SCOPE (organization|workspace),
    /// KEYROTD_WORKSPACE (id, workspace scope only), KEYROTD_WORKSPACE_NAME, KEYROTD_BUDGET_THRESHOLD,
    /// KEYROTD_BUDGET_PERCENT (one decimal), KEYROTD_BUDGET_SPENT, KEYROTD_BUDGET_LIMIT (two decimals),
    /// KEYROTD_BUDGET_CURRENCY, KEYROTD_BUDGET_MONTH.
    ///
    /// A value the provider did not give (a workspace's name, the currency) is left
    /// out rather than set empty, so a hook can tell "unknown" with `${VAR+x}`.
    /// Numbers use "." as the decimal separator whatever the locale.
    public static func hookVariables(_ alert: BudgetAlert) -> [String: String] {
        let figure = alert.figure
        var variables = [
            "KEYROTD_BUDGET_SCOPE": figure.scope.rawValue,
            "KEYROTD_BUDGET_THRESHOLD": String(alert.threshold),
            "KEYROTD_BUDGET_PERCENT": decimal(figure.percent, digits: 1),
            "KEYROTD_BUDGET_SPENT": decimal(figure.spent, digits: 2),
            "KEYROTD_BUDGET_LIMIT": decimal(figure.limit, digits: 2),
            "KEYROTD_BUDGET_MONTH": alert.month,
        ]
        if let provider = figure.provider { variables["KEYROTD_PROVIDER"] = provider }
        if figure.scope == .workspace {
            variables["KEYROTD_WORKSPACE"] = figure.workspaceID
            variables["KEYROTD_WORKSPACE_NAME"] = figure.workspaceName
        }
        variables["KEYROTD_BUDGET_CURRENCY"] = figure.currency
        return variables
    }

    /// `spent >= threshold% of limit`, compared without dividing so that, say,
    /// 57 of 60 counts as 95% exactly.
    private static func crossed(_ figure: SpendFigure, _ threshold: Int) -> Bool {
        figure.limit > 0 && figure.spent * 100 >= Double(threshold) * figure.limit
    }

    private static func decimal(_ value: Double, digits: Int) -> String {
        String(format: "%.\(digits)f", value.isFinite ? value : 0)
    }

    private static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        return calendar
    }()
}

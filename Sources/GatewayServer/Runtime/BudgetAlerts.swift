import GatewayCore
import KeyRotation
import KeyRotationAdapters
import Logging

/// A role's settled spend reached one of its `alert_at` thresholds: one journal event
/// (`budget-threshold`) and the alert hooks, keyrotd's contract (`KEYROTD_EVENT=budget`,
/// empty stdin), once per role, month and threshold (the store hands each crossing out once).
public struct BudgetAlerts: Sendable {
    let logger: Logger
    let hooks: HookRunner

    public init(logger: Logger) {
        self.logger = logger
        self.hooks = HookRunner(logger: logger)
    }

    func raise(role: String, month: BudgetMonth, threshold: Int, spent: Money, budget: Money, loaded: LoadedGateway) {
        let currency = loaded.configuration.currency
        let percent = budget.nanos > 0 ? Int((Double(spent.nanos) / Double(budget.nanos) * 100).rounded(.down)) : 100
        logger.warning(
            "role \(role) has spent \(spent) of its \(budget) \(currency) budget for \(month) (\(percent)%, threshold \(threshold)%)",
            metadata: [
                "event": "budget-threshold", "role": .string(role), "threshold": .stringConvertible(threshold),
                "percent": .stringConvertible(percent), "spent": .string(spent.description),
                "limit": .string(budget.description), "currency": .string(currency), "month": .string(month.description),
            ])
        let variables = [
            "KEYROTD_BUDGET_SCOPE": "role", "KEYROTD_ROLE": role, "KEYROTD_BUDGET_THRESHOLD": String(threshold),
            "KEYROTD_BUDGET_PERCENT": String(percent), "KEYROTD_BUDGET_SPENT": spent.description,
            "KEYROTD_BUDGET_LIMIT": budget.description, "KEYROTD_BUDGET_CURRENCY": currency,
            "KEYROTD_BUDGET_MONTH": month.description,
        ]
        let timeout = TimeSpan.seconds(Int64(loaded.configuration.alertHookTimeoutSeconds))
        for hook in loaded.configuration.alertHooks {
            let runner = hooks
            Task {
                _ = await runner.runAlert(path: hook, event: "budget", variables: variables, timeout: timeout)
            }
        }
    }
}

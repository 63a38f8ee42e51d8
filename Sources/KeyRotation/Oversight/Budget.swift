import Foundation

/// A month's spend against a limit, for the organisation or one workspace.
public struct SpendFigure: Codable, Sendable, Equatable {
    public enum Scope: String, Codable, Sendable, Equatable {
        case organization
        case workspace
    }

    public var scope: Scope
    /// The `[providers.*]` section the figure was read from (set by the daemon;
    /// two providers may be two organisations).
    public var provider: String?
    public var workspaceID: String?
    public var workspaceName: String?
    /// Spend this month so far.
    public var spent: Double
    /// The monthly limit (always > 0: scopes without a limit have no figure).
    public var limit: Double
    public var currency: String?

    public init(scope: Scope, workspaceID: String? = nil, workspaceName: String? = nil, spent: Double, limit: Double, currency: String?) {
        self.scope = scope
        self.workspaceID = workspaceID
        self.workspaceName = workspaceName
        self.spent = spent
        self.limit = limit
        self.currency = currency
    }

    /// Spend as a percentage of the limit.
    public var percent: Double { limit > 0 ? spent / limit * 100 : 0 }

    /// `organization` or `workspace:<id>`, after `<provider>:` when known: what
    /// alerts are remembered by.
    public var scopeID: String {
        let base = switch scope {
        case .organization: "organization"
        case .workspace: "workspace:\(workspaceID ?? "")"
        }
        return provider.map { "\($0):\(base)" } ?? base
    }

    enum CodingKeys: String, CodingKey {
        case scope, provider, spent, limit, currency
        case workspaceID = "workspace_id"
        case workspaceName = "workspace_name"
    }

    /// Every field, nulls included, so the JSON shape never changes.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(scope, forKey: .scope)
        try c.encode(provider, forKey: .provider)
        try c.encode(workspaceID, forKey: .workspaceID)
        try c.encode(workspaceName, forKey: .workspaceName)
        try c.encode(spent, forKey: .spent)
        try c.encode(limit, forKey: .limit)
        try c.encode(currency, forKey: .currency)
    }
}

/// One threshold crossed by one scope in one month.
public struct BudgetAlert: Sendable, Equatable {
    public var figure: SpendFigure
    /// Percent of the limit (one of `budget.thresholds`).
    public var threshold: Int
    /// `YYYY-MM` (UTC).
    public var month: String

    public init(figure: SpendFigure, threshold: Int, month: String) {
        self.figure = figure
        self.threshold = threshold
        self.month = month
    }

    /// `<scopeID>@<threshold>`: what `BudgetMemory.raised` holds.
    public var id: String { "\(figure.scopeID)@\(threshold)" }
}

/// The alerts raised this month, persisted so a restart never raises one twice.
public struct BudgetMemory: Codable, Sendable, Equatable {
    /// `YYYY-MM` (UTC) the `raised` list belongs to.
    public var month: String
    /// `BudgetAlert.id`s raised in `month`.
    public var raised: [String]

    public init(month: String, raised: [String] = []) {
        self.month = month
        self.raised = raised
    }
}

/// Reads the month's spend: the organisation's figure (if it has a monthly
/// limit) and one per workspace that has its own limit.
public protocol SpendSource: Sendable {
    func spend(now: Date) async throws(StepFailure) -> [SpendFigure]
}

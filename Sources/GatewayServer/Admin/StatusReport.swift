import Foundation
import GatewayCore

/// What `keyrotd-gateway status` shows: roles with their month's spend against budget,
/// limits and what is left of them now, the upstream key generation each spends, and
/// the clients. The JSON is `status --json`'s contract (fields may be added).
public struct StatusReport: Codable, Sendable {
    public struct RoleStatus: Codable, Sendable {
        public var name: String
        public var models: [String]
        public var upstreamKey: String
        public var upstreamKeyID: String?
        public var upstreamKeyGeneration: Int?
        public var upstreamKeyReceivedAt: Int64?
        public var requestsPerMinute: Int?
        public var requestsRemaining: Int?
        public var tokensPerMinute: Int?
        public var tokensRemaining: Int?
        public var maxTokens: Int?
        public var monthlyBudget: Double?
        public var spent: Double
        public var reserved: Double
        public var requests: Int
        public var promptTokens: Int
        public var completionTokens: Int
        public var alertAt: [Int]
        public var alertsRaised: [Int]

        enum CodingKeys: String, CodingKey {
            case name, models, spent, reserved, requests
            case upstreamKey = "upstream_key"
            case upstreamKeyID = "upstream_key_id"
            case upstreamKeyGeneration = "upstream_key_generation"
            case upstreamKeyReceivedAt = "upstream_key_received_at"
            case requestsPerMinute = "requests_per_minute"
            case requestsRemaining = "requests_remaining"
            case tokensPerMinute = "tokens_per_minute"
            case tokensRemaining = "tokens_remaining"
            case maxTokens = "max_tokens"
            case monthlyBudget = "monthly_budget"
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
            case alertAt = "alert_at"
            case alertsRaised = "alerts_raised"
        }
    }

    public struct ClientStatus: Codable, Sendable {
        public var name: String
        public var role: String
        /// "token", "unix_user:NAME" or "unix_group:NAME".
        public var authentication: String
    }

    public var config: String
    public var upstream: String
    public var currency: String
    public var month: String
    public var listen: [String]
    public var roles: [RoleStatus]
    public var clients: [ClientStatus]

    static func make(gateway: GatewayResponder) async -> StatusReport {
        let loaded = gateway.loaded
        let configuration = loaded.configuration
        let month = BudgetMonth(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        var roles: [RoleStatus] = []
        for role in configuration.roles.values.sorted(by: { $0.name < $1.name }) {
            let key = await gateway.store.key(named: role.upstreamKey)
            let entry = await gateway.store.spend(role: role.name, month: month)
            let limits = RateLimiter.Limits(requestsPerMinute: role.requestsPerMinute, tokensPerMinute: role.tokensPerMinute)
            let remaining = await gateway.store.remaining(role: role.name, limits: limits)
            roles.append(
                RoleStatus(
                    name: role.name, models: role.models.patterns.map(\.description), upstreamKey: role.upstreamKey,
                    upstreamKeyID: key?.keyID, upstreamKeyGeneration: key?.generation,
                    upstreamKeyReceivedAt: key?.receivedAt, requestsPerMinute: role.requestsPerMinute,
                    requestsRemaining: remaining.requests, tokensPerMinute: role.tokensPerMinute,
                    tokensRemaining: remaining.tokens, maxTokens: role.maxTokens,
                    monthlyBudget: role.monthlyBudget?.asDouble, spent: entry.settled.asDouble,
                    reserved: entry.reserved.asDouble, requests: entry.requests, promptTokens: entry.promptTokens,
                    completionTokens: entry.completionTokens, alertAt: role.alertAt,
                    alertsRaised: entry.alertsRaised.sorted()))
        }
        let clients = configuration.clients.values.sorted(by: { $0.name < $1.name }).map { client in
            let authentication: String
            switch client.credential {
            case .tokenSHA256: authentication = "token"
            case .unixUser(let name): authentication = "unix_user:\(name)"
            case .unixGroup(let name): authentication = "unix_group:\(name)"
            }
            return ClientStatus(name: client.name, role: client.role, authentication: authentication)
        }
        return StatusReport(
            config: loaded.path, upstream: configuration.upstream.url, currency: configuration.currency,
            month: month.description, listen: configuration.listeners.map(\.description), roles: roles, clients: clients)
    }
}

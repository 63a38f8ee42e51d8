import KeyRotation

/// The current secret of one keyrotd key, as delivered by its deploy hook.
public struct UpstreamKey: Sendable, Equatable, Codable {
    public var secret: Secret
    /// The provider's key id (`KEYROTD_KEY_ID`), for request logs; never secret.
    public var keyID: String?
    /// keyrotd's generation of the key (`KEYROTD_GENERATION`).
    public var generation: Int?
    /// When the gateway received it, seconds since the epoch.
    public var receivedAt: Int64

    public init(secret: Secret, keyID: String?, generation: Int?, receivedAt: Int64) {
        self.secret = secret
        self.keyID = keyID
        self.generation = generation
        self.receivedAt = receivedAt
    }

    enum CodingKeys: String, CodingKey {
        case secret
        case keyID = "key_id"
        case generation
        case receivedAt = "received_at"
    }
}

/// Everything gateway processes must share, behind one seam: upstream keys, spend per
/// role and month, budget alerts raised, rate-limit buckets.
///
/// Every operation is one atomic check-and-update the store performs (a reservation is
/// refused or taken in one step), never a read the caller then writes back: the next
/// implementation of this protocol is a database several gateway replicas share.
public protocol GatewayStore: Sendable {
    /// The current key of keyrotd key `name`.
    func key(named name: String) async -> UpstreamKey?
    func keys() async -> [String: UpstreamKey]
    /// Makes `key` current for `name`; returns once it is durable.
    func setKey(_ key: UpstreamKey, named name: String) async throws

    /// Reserves `amount` of `role`'s budget for `month` (nil budget: always fits). A
    /// reservation against a budget is durable before this returns, so a crash can never
    /// forget money a forwarded request may have spent; without a budget there is nothing
    /// to enforce and it is recorded without waiting.
    func reserve(role: String, month: BudgetMonth, amount: Money, budget: Money?) async throws
        -> SpendBook.ReserveOutcome
    /// Settles reservation `id` at `cost` (at most what it reserved). Returns the alert
    /// thresholds this settlement crossed first; each is returned once per role and month
    /// across every process sharing the store, and durable before it is returned.
    func settle(
        role: String, month: BudgetMonth, id: UInt64, cost: Money, usage: Usage?, budget: Money?, alertAt: [Int]
    ) async -> [Int]
    /// Gives a reservation back unspent (the request never reached the provider).
    func release(role: String, month: BudgetMonth, id: UInt64) async
    func spend(role: String, month: BudgetMonth) async -> SpendBook.Entry

    /// Takes one request and `tokens` from the role's rate limits, or says how long to wait.
    func admit(role: String, tokens: Int, limits: RateLimiter.Limits) async -> RateLimiter.Decision
    /// Returns tokens a request estimated but did not use.
    func refund(role: String, tokens: Int, limits: RateLimiter.Limits) async
    func remaining(role: String, limits: RateLimiter.Limits) async -> (requests: Int?, tokens: Int?)
}

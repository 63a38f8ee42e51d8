/// Per-role request and token limits as token buckets: a limit of N per minute holds
/// at most N, refills N/60 per second, and a request takes 1 request and its token
/// estimate. Pure: the caller passes `now` (seconds, any monotonic origin).
public struct RateLimiter: Sendable {
    public struct Limits: Sendable, Equatable {
        public var requestsPerMinute: Int?
        public var tokensPerMinute: Int?
        public init(requestsPerMinute: Int?, tokensPerMinute: Int?) {
            self.requestsPerMinute = requestsPerMinute
            self.tokensPerMinute = tokensPerMinute
        }
    }

    struct Bucket: Sendable {
        var level: Double
        var updated: Double

        mutating func refill(capacity: Double, now: Double) {
            let perSecond = capacity / 60
            level = min(capacity, level + max(0, now - updated) * perSecond)
            updated = max(updated, now)
        }
    }

    public enum Decision: Sendable, Equatable {
        case admitted
        /// Try again in this many seconds (rounded up, at least 1).
        case limited(retryAfter: Int, limit: String)
        /// The request alone needs more than a whole minute's tokens: it can never pass.
        case neverFits(tokens: Int, tokensPerMinute: Int)
    }

    private var requestBuckets: [String: Bucket] = [:]
    private var tokenBuckets: [String: Bucket] = [:]

    public init() {}

    public mutating func admit(role: String, tokens: Int, limits: Limits, now: Double) -> Decision {
        if let tpm = limits.tokensPerMinute, tokens > tpm {
            return .neverFits(tokens: tokens, tokensPerMinute: tpm)
        }
        var requests = limits.requestsPerMinute.map { capacity in
            var bucket = requestBuckets[role] ?? Bucket(level: Double(capacity), updated: now)
            bucket.refill(capacity: Double(capacity), now: now)
            return bucket
        }
        var tokenBucket = limits.tokensPerMinute.map { capacity in
            var bucket = tokenBuckets[role] ?? Bucket(level: Double(capacity), updated: now)
            bucket.refill(capacity: Double(capacity), now: now)
            return bucket
        }
        var wait = 0.0
        var which = ""
        if let bucket = requests, let capacity = limits.requestsPerMinute, bucket.level < 1 {
            wait = (1 - bucket.level) / (Double(capacity) / 60)
            which = "requests_per_minute = \(capacity)"
        }
        if let bucket = tokenBucket, let capacity = limits.tokensPerMinute, bucket.level < Double(tokens) {
            let tokenWait = (Double(tokens) - bucket.level) / (Double(capacity) / 60)
            if tokenWait > wait {
                wait = tokenWait
                which = "tokens_per_minute = \(capacity)"
            }
        }
        if wait > 0 {
            if let requests { requestBuckets[role] = requests }
            if let tokenBucket { tokenBuckets[role] = tokenBucket }
            return .limited(retryAfter: max(1, Int(wait.rounded(.up))), limit: which)
        }
        requests?.level -= 1
        tokenBucket?.level -= Double(tokens)
        if let requests { requestBuckets[role] = requests }
        if let tokenBucket { tokenBuckets[role] = tokenBucket }
        return .admitted
    }

    /// Gives back tokens a request estimated but did not use.
    public mutating func refund(role: String, tokens: Int, limits: Limits, now: Double) {
        guard tokens > 0, let capacity = limits.tokensPerMinute, var bucket = tokenBuckets[role] else { return }
        bucket.refill(capacity: Double(capacity), now: now)
        bucket.level = min(Double(capacity), bucket.level + Double(tokens))
        tokenBuckets[role] = bucket
    }

    /// What is left right now (for status), nil where there is no limit.
    public func remaining(role: String, limits: Limits, now: Double) -> (requests: Int?, tokens: Int?) {
        func level(_ bucket: Bucket?, _ capacity: Int?) -> Int? {
            guard let capacity else { return nil }
            guard var bucket else { return capacity }
            bucket.refill(capacity: Double(capacity), now: now)
            return Int(bucket.level.rounded(.down))
        }
        return (level(requestBuckets[role], limits.requestsPerMinute), level(tokenBuckets[role], limits.tokensPerMinute))
    }
}

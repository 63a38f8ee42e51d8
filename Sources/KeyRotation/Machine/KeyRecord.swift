import Foundation

/// Where a key is in its rotation. The persisted phase is the step to perform (or
/// resume) next; see `RotationMachine` for the transitions.
public enum Phase: String, Codable, Sendable, Equatable, CaseIterable {
    /// Waiting for the next due time.
    case idle
    /// Looking up the provider key named by `adopt` to make it current.
    case adopting
    /// Creating the pending key at the provider (after reconciling an earlier attempt).
    case creating
    /// Checking the new key works before any consumer sees it.
    case verifying
    /// Running deploy hooks with the new secret.
    case deploying
    /// Old and new keys both valid until `previous.retireAt`.
    case overlapping
    /// Deleting the old key, then running retire hooks.
    case retiring
    /// A step failed in a way an operator must fix (401, 403, 422, ...); retried slowly.
    case blocked
}

/// A key at the provider that keyrotd knows.
public struct ProviderKeyRef: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var createdAt: Date
    public var generation: Int
    /// When the provider expires the key on its own, at the latest: creation plus the
    /// lifetime its create asked for (the provider rounds the day up), or the expiry
    /// an adopted key was listed with. nil when unknown (state files written before
    /// this field, adopted keys without an expiry).
    public var expiresAt: Date?

    public init(id: String, name: String, createdAt: Date, generation: Int, expiresAt: Date? = nil) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.generation = generation
        self.expiresAt = expiresAt
    }
}

/// The key being replaced, from the end of deploy until it is deleted and its
/// retire hooks have run.
public struct RetiringKey: Codable, Sendable, Equatable {
    public var key: ProviderKeyRef
    /// When the overlap ends and the key may be deleted.
    public var retireAt: Date
    /// Deleted at the provider (or found already gone).
    public var deleted: Bool
    /// Retire hooks that have succeeded, by path.
    public var hooksDone: [String]
    /// When the new key's deploy finished: usage of the old key on a later day
    /// means some consumer still holds it. nil in state files written before
    /// usage-aware retirement (then `retireAt - overlap` stands in).
    public var deployedAt: Date?
    /// When the old key's `last_used` was last looked at; nil before the first look.
    public var usageCheckedAt: Date?
    /// How many times the overlap was extended because the old key was still used.
    public var extensions: Int?

    public init(
        key: ProviderKeyRef, retireAt: Date, deleted: Bool = false, hooksDone: [String] = [], deployedAt: Date? = nil,
        usageCheckedAt: Date? = nil, extensions: Int? = nil
    ) {
        self.key = key
        self.retireAt = retireAt
        self.deleted = deleted
        self.hooksDone = hooksDone
        self.deployedAt = deployedAt
        self.usageCheckedAt = usageCheckedAt
        self.extensions = extensions
    }
}

/// The new key while a rotation is in flight. Holds the secret only from create
/// until every deploy hook has succeeded.
public struct PendingKey: Codable, Sendable, Equatable {
    public var generation: Int
    /// Deterministic provider key name, `keyrotd/<instance>/<key>/g<generation>/<rotation id>`
    /// (`ProviderKeyName`; `keyrotd/<key>/g<generation>/<rotation id>` in state files
    /// written before instances).
    public var name: String
    /// Set, and persisted, before the create call is sent: from then on the
    /// provider may hold a key of this name that we do not know, so the next
    /// attempt lists by name first.
    public var createAttempted: Bool
    /// The lifetime the create asked the provider for (set with `createAttempted`):
    /// a reload in between must not change what the key's expiry is taken to be.
    public var lifetime: TimeSpan?
    /// Provider keys carrying `name` found while reconciling; deleted before creating anew
    /// because their secrets are lost.
    public var orphans: [String]
    public var id: String?
    public var secret: Secret?
    public var createdAt: Date?
    /// Deploy hooks that have succeeded, by path; a retry runs only the others.
    public var hooksDone: [String]

    public init(
        generation: Int, name: String, createAttempted: Bool = false, orphans: [String] = [], id: String? = nil,
        secret: Secret? = nil, createdAt: Date? = nil, hooksDone: [String] = []
    ) {
        self.generation = generation
        self.name = name
        self.createAttempted = createAttempted
        self.orphans = orphans
        self.id = id
        self.secret = secret
        self.createdAt = createdAt
        self.hooksDone = hooksDone
    }
}

/// Why the last attempt of a step failed.
public struct StepFailure: Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable, Equatable {
        /// Network, 5xx, timeouts, a failing hook: retry with backoff.
        case transient
        /// 429: retry after `retryAfter` (or backoff when the provider gave none).
        case rateLimited
        /// 401, 403, 422, a missing adopt key: an operator must act; retried slowly.
        case needsOperator
        /// keyrotd itself could not go on (the state file could not be written): retried
        /// after `retry_initial`, not counted against the step.
        case deferred
    }

    public var kind: Kind
    /// Stable, machine-readable: `http_401`, `network`, `hook_exit_2`, `hook_timeout`, ...
    public var code: String
    /// For people; never contains a secret.
    public var message: String
    public var retryAfter: TimeSpan?

    public init(kind: Kind, code: String, message: String, retryAfter: TimeSpan? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { "\(code): \(message)" }
}

/// Everything keyrotd persists about one managed key.
public struct KeyRecord: Codable, Sendable, Equatable {
    public var name: String
    public var phase: Phase
    /// Generation of `current`; 0 for an adopted key or before the first key exists.
    public var generation: Int
    public var current: ProviderKeyRef?
    public var previous: RetiringKey?
    public var pending: PendingKey?
    /// When the next rotation starts (due time plus jitter, moved into the window).
    public var nextDue: Date?
    /// This cycle's jitter as a fraction of the policy's jitter, drawn once per cycle
    /// so a restart or a reload does not move the due time around.
    public var jitterDraw: Double
    /// Failed attempts of the current step.
    public var attempts: Int
    /// No attempt before this instant (backoff, Retry-After, blocked retry).
    public var retryAt: Date?
    /// The step that was blocked, resumed when `retryAt` passes or an operator asks.
    public var blockedStep: Phase?
    public var lastError: StepFailure?
    /// An emergency rotation: the old key is deleted as soon as the new one is deployed.
    public var revoking: Bool
    /// A revoke arrived while the new key was already with consumers (overlapping or
    /// retiring): once the old key is gone, a second emergency rotation replaces the
    /// current one too, so every key that existed at the request is deleted.
    public var revokeQueued: Bool
    /// Start-up catch-up: the rotation does not start before this, even if due.
    public var notBefore: Date?
    /// The end-of-rotation sweep: keyrotd-named keys of this key that are neither
    /// current nor previous (a create that reached the provider after keyrotd gave
    /// up on it), to delete. nil until the sweep has listed them.
    public var strays: [String]?
    /// The `[providers.*]` section the keys were created with; a key never moves
    /// between providers while the state knows it.
    public var provider: String?
    public var rotationStartedAt: Date?
    public var random: SplitMix64

    public init(name: String, seed: UInt64) {
        self.name = name
        phase = .idle
        generation = 0
        jitterDraw = 0
        attempts = 0
        revoking = false
        revokeQueued = false
        random = SplitMix64(seed: seed)
    }
}

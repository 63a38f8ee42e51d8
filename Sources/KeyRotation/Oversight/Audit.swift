import Foundation

/// One thing an audit found wrong with a provider key (or a managed key).
public struct AuditFinding: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, Equatable, CaseIterable {
        /// A provider key keyrotd does not manage (not created or adopted by a state record).
        case unmanaged
        /// A key named for this keyrotd instance and one of its keys, in that key's
        /// workspace, that no state record knows: its secret is lost; `remedy` removes it.
        case orphan
        /// A key another keyrotd instance sharing the organisation created
        /// (`keyrotd/<other instance>/…`): never deleted by this one.
        case foreign
        /// A key named by the scheme before instances (`keyrotd/<key>/g<n>/<id>`) for
        /// one of this keyrotd's keys, that no state record knows: this keyrotd's
        /// orphan from before the upgrade, or a not yet upgraded keyrotd's key.
        /// Never deleted on its own; `remedy` removes it once an operator is sure.
        case legacy
        /// Not used for longer than `audit.stale_after` (or never, and older than that).
        case stale
        /// Older than its policy allows (rotate_every + jitter + max_overlap).
        case overAge = "over-age"
        /// Expires before its next rotation (or has expired).
        case expiring
        /// A managed key's current key is not at the provider.
        case missing
    }

    public var kind: Kind
    /// The provider key the finding is about (nil for `missing`).
    public var keyID: String?
    /// The managed key it belongs to, if any.
    public var key: String?
    /// One line for people; never contains a secret.
    public var message: String
    /// The command that resolves it, if there is one.
    public var remedy: String?

    public init(kind: Kind, keyID: String?, key: String?, message: String, remedy: String? = nil) {
        self.kind = kind
        self.keyID = keyID
        self.key = key
        self.message = message
        self.remedy = remedy
    }

    /// Stable identity across audits, so a scheduled audit reports each finding once.
    public var id: String { "\(kind.rawValue):\(keyID ?? key ?? "")" }

    enum CodingKeys: String, CodingKey {
        case kind, key, message, remedy
        case keyID = "key_id"
    }

    /// Every field, nulls included, so the JSON shape never changes.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(keyID, forKey: .keyID)
        try c.encode(key, forKey: .key)
        try c.encode(message, forKey: .message)
        try c.encode(remedy, forKey: .remedy)
    }
}

/// One provider key as the audit lists it.
public struct AuditedKey: Codable, Sendable, Equatable {
    public enum Role: String, Codable, Sendable, Equatable {
        /// The key consumers hold.
        case current
        /// The old key during its overlap.
        case retiring
        /// The new key of a rotation in flight.
        case pending
        /// Known to a state record of a key no longer in the configuration.
        case unconfigured
    }

    public var id: String
    public var name: String
    public var workspaceID: String?
    public var workspaceName: String?
    public var createdAt: Date
    public var lastUsed: Date?
    public var expiresOn: Date?
    /// The managed key this provider key belongs to, if any.
    public var managedAs: String?
    public var role: Role?
    public var findings: [AuditFinding]

    public init(
        id: String, name: String, workspaceID: String?, workspaceName: String?, createdAt: Date, lastUsed: Date?,
        expiresOn: Date?, managedAs: String?, role: Role?, findings: [AuditFinding]
    ) {
        self.id = id
        self.name = name
        self.workspaceID = workspaceID
        self.workspaceName = workspaceName
        self.createdAt = createdAt
        self.lastUsed = lastUsed
        self.expiresOn = expiresOn
        self.managedAs = managedAs
        self.role = role
        self.findings = findings
    }

    enum CodingKeys: String, CodingKey {
        case id, name, role, findings
        case workspaceID = "workspace_id"
        case workspaceName = "workspace_name"
        case createdAt = "created_at"
        case lastUsed = "last_used"
        case expiresOn = "expires_on"
        case managedAs = "managed_as"
    }

    /// Every field, nulls included, so the JSON shape never changes.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(workspaceID, forKey: .workspaceID)
        try c.encode(workspaceName, forKey: .workspaceName)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(lastUsed, forKey: .lastUsed)
        try c.encode(expiresOn, forKey: .expiresOn)
        try c.encode(managedAs, forKey: .managedAs)
        try c.encode(role, forKey: .role)
        try c.encode(findings, forKey: .findings)
    }
}

/// What `keyrotd audit` prints and the scheduled audit logs.
public struct AuditReport: Codable, Sendable, Equatable {
    public var version: Int
    public var generatedAt: Date
    /// Every provider key, sorted by name then id.
    public var keys: [AuditedKey]
    /// Findings not tied to a listed provider key (a managed key whose current key is missing).
    public var other: [AuditFinding]
    /// Spend against limit (organisation first, then workspaces by name); nil if it could not be read.
    public var spend: [SpendFigure]?
    /// Why `spend` is nil, if it is.
    public var spendError: String?

    public init(
        generatedAt: Date, keys: [AuditedKey], other: [AuditFinding], spend: [SpendFigure]? = nil,
        spendError: String? = nil
    ) {
        version = 1
        self.generatedAt = generatedAt
        self.keys = keys
        self.other = other
        self.spend = spend
        self.spendError = spendError
    }

    /// Every finding, in report order.
    public var findings: [AuditFinding] { keys.flatMap(\.findings) + other }

    enum CodingKeys: String, CodingKey {
        case version, keys, other, spend
        case generatedAt = "generated_at"
        case spendError = "spend_error"
    }

    /// Every field, nulls included, so the JSON shape never changes.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(generatedAt, forKey: .generatedAt)
        try c.encode(keys, forKey: .keys)
        try c.encode(other, forKey: .other)
        try c.encode(spend, forKey: .spend)
        try c.encode(spendError, forKey: .spendError)
    }
}

/// What the scheduled audit remembers across runs and restarts: the findings
/// already written to the journal, so each is reported once.
public struct AuditMemory: Codable, Sendable, Equatable {
    /// Finding ids (`AuditFinding.id`) already reported.
    public var reported: [String]
    public var lastRun: Date?

    public init(reported: [String] = [], lastRun: Date? = nil) {
        self.reported = reported
        self.lastRun = lastRun
    }

    enum CodingKeys: String, CodingKey {
        case reported
        case lastRun = "last_run"
    }
}

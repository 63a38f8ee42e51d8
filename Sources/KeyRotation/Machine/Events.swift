import Foundation

/// A key the provider created for us, with its secret (shown only at creation).
public struct CreatedKey: Sendable, Equatable {
    public var id: String
    public var name: String
    public var secret: Secret
    public var createdAt: Date

    public init(id: String, name: String, secret: Secret, createdAt: Date) {
        self.id = id
        self.name = name
        self.secret = secret
        self.createdAt = createdAt
    }
}

/// A key as the provider's list shows it (no secret).
public struct ListedKey: Sendable, Equatable {
    public var id: String
    public var name: String
    public var createdAt: Date
    public var workspaceID: String?
    public var workspaceName: String?
    public var lastUsed: Date?
    public var expiresOn: Date?

    public init(
        id: String, name: String, createdAt: Date, workspaceID: String? = nil, workspaceName: String? = nil,
        lastUsed: Date? = nil, expiresOn: Date? = nil
    ) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.workspaceID = workspaceID
        self.workspaceName = workspaceName
        self.lastUsed = lastUsed
        self.expiresOn = expiresOn
    }
}

/// What the loop tells the machine.
public enum Event: Sendable, Equatable {
    /// Time has passed (a deadline from `nextDeadline`, or a restart): do what is due.
    case tick
    /// The create call in flight succeeded.
    case created(CreatedKey)
    /// The list call in flight succeeded (reconcile or adopt).
    case listed([ListedKey])
    /// The verify call in flight succeeded.
    case verified
    /// The hook in flight exited 0.
    case hookSucceeded(path: String)
    /// The delete call in flight succeeded, or the key was already gone (404).
    case deleted(keyID: String)
    /// The step in flight failed.
    case failed(StepFailure)
    /// An operator asked for a normal rotation now.
    case rotateRequested
    /// An operator asked for an emergency rotation: no overlap.
    case revokeRequested
}

public enum HookEvent: String, Sendable, Equatable {
    case deploy
    case retire
}

/// One hook run, with everything its environment and stdin are built from.
public struct HookInvocation: Sendable, Equatable {
    public var path: String
    public var event: HookEvent
    public var key: String
    /// The new key (deploy) or the key just retired (retire).
    public var keyID: String
    public var oldKeyID: String?
    public var generation: Int
    /// On deploy only: written to the hook's stdin.
    public var secret: Secret?
}

/// What the machine asks the loop to do, in order. At most one action per call
/// has an outcome the machine waits for (create, list, verify, hook, delete);
/// it comes last.
public enum Action: Sendable, Equatable {
    /// Write the record to the state file before going on (intent or outcome).
    case persist
    /// Create a key named `name` valid for `lifetime` (the provider rounds up to a date).
    case createKey(name: String, lifetime: TimeSpan)
    /// List the provider's keys; `nameContains` filters by substring, nil lists all.
    case listKeys(nameContains: String?)
    case verifyKey(id: String, secret: Secret)
    case runHook(HookInvocation)
    case deleteKey(id: String)
    /// Write an audit event to the journal.
    case emit(AuditEvent)
    /// An operator request was not carried out; the text says why.
    case refuse(String)

    /// True for the actions whose outcome the machine waits for.
    public var awaitsOutcome: Bool {
        switch self {
        case .createKey, .listKeys, .verifyKey, .runHook, .deleteKey: true
        case .persist, .emit, .refuse: false
        }
    }
}

/// One entry of a key's audit trail.
public struct AuditEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        case rotationStarted = "rotation-started"
        case keyCreated = "key-created"
        case keyVerified = "key-verified"
        case hookSucceeded = "hook-succeeded"
        case deployed
        case overlapStarted = "overlap-started"
        case keyRetired = "key-retired"
        case rotationCompleted = "rotation-completed"
        case stepFailed = "step-failed"
        case blocked
        case orphanFound = "orphan-found"
        case orphanDeleted = "orphan-deleted"
        case adopted
        case revokeRequested = "revoke-requested"
        case rotateRequested = "rotate-requested"
        case caughtUp = "caught-up"
        case retirementExtended = "retirement-extended"
        case retirementForced = "retirement-forced"
    }

    public var kind: Kind
    public var key: String
    public var keyID: String?
    public var oldKeyID: String?
    public var generation: Int?
    /// One line for people; never contains a secret.
    public var message: String
    public var failure: StepFailure?

    public init(
        _ kind: Kind, key: String, keyID: String? = nil, oldKeyID: String? = nil, generation: Int? = nil,
        message: String, failure: StepFailure? = nil
    ) {
        self.kind = kind
        self.key = key
        self.keyID = keyID
        self.oldKeyID = oldKeyID
        self.generation = generation
        self.message = message
        self.failure = failure
    }
}

import Foundation

/// The control socket's protocol, version 1.
///
/// One request per connection: the client writes one JSON object (a
/// `ControlRequest`) followed by a newline, the daemon answers with one JSON
/// object (a `ControlResponse`) followed by a newline and closes. A request
/// larger than `maxRequestBytes`, or not complete within the server's read
/// timeout, is answered with an error. No reply ever contains a secret.
public enum ControlProtocol {
    public static let version = 1
    public static let maxRequestBytes = 65_536
}

public struct ControlRequest: Codable, Sendable, Equatable {
    public enum Command: String, Codable, Sendable, Equatable, CaseIterable {
        /// Is the daemon there? Result: `ControlPong`.
        case ping
        /// Every managed key's progress. Result: `[KeyProgress]`.
        case status
        /// Start a normal rotation of `key` now. Result: `KeyProgress`.
        case rotate
        /// Emergency rotation of `key`, no overlap. Result: `KeyProgress`.
        case revoke
        /// Audit every provider key. Result: `AuditReport`.
        case audit
        /// Delete the orphan `key_id` (a keyrotd-named key no state record knows). Result: `DeletedOrphan`.
        case deleteOrphan = "delete-orphan"
    }

    public var version: Int
    public var command: Command
    /// The managed key (rotate, revoke).
    public var key: String?
    /// A provider key id (delete-orphan).
    public var keyID: String?

    public init(command: Command, key: String? = nil, keyID: String? = nil) {
        version = ControlProtocol.version
        self.command = command
        self.key = key
        self.keyID = keyID
    }

    enum CodingKeys: String, CodingKey {
        case version, command, key
        case keyID = "key_id"
    }

    /// Why the request's fields cannot be used, or nil. Checked before anything of
    /// the request is logged or looked up: `key` must be a valid key name and
    /// `key_id` a plausible provider key id, so a client cannot put 64 KiB, a
    /// newline or a terminal escape into the journal. The message never quotes the
    /// offending value.
    public var fieldProblem: ControlError? {
        if let key, !ManagedKey.isValidName(key) {
            return ControlError(
                code: "bad_request",
                message: "key is not a valid key name (1-64 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit)")
        }
        if let keyID, !Self.isPlausibleKeyID(keyID) {
            return ControlError(
                code: "bad_request", message: "key_id is not a provider key id (1-128 letters, digits, \".\", \"_\" or \"-\")")
        }
        return nil
    }

    /// Provider key ids are UUIDs at Mistral; this admits any id made of the
    /// characters ids are made of, and nothing that could break a log line.
    public static func isPlausibleKeyID(_ id: String) -> Bool {
        (1...128).contains(id.unicodeScalars.count) && id.unicodeScalars.allSatisfy(ManagedKey.isNameCharacter)
    }
}

/// Why a request was not carried out. `code` is stable and machine-readable.
public struct ControlError: Codable, Sendable, Equatable, Error, CustomStringConvertible {
    /// The request is not valid JSON or misses a field (`bad_request`), names a
    /// version this daemon does not speak (`unsupported_version`), the peer may
    /// not use the socket (`forbidden`), the request is too large (`too_large`)
    /// or too slow (`timeout`), names an unknown key (`unknown_key`), is refused
    /// by the key's state (`refused`), the provider failed (`provider`), the
    /// daemon is stopping (`shutting_down`), too many requests are open (`busy`),
    /// or the daemon could not encode its answer (`internal`, a bug).
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

public struct ControlResponse<Result: Codable & Sendable>: Codable, Sendable {
    public var version: Int
    public var ok: Bool
    public var error: ControlError?
    public var result: Result?

    public init(result: Result) {
        version = ControlProtocol.version
        ok = true
        error = nil
        self.result = result
    }

    public init(error: ControlError) {
        version = ControlProtocol.version
        ok = false
        self.error = error
        result = nil
    }
}

/// A response with no result, for errors.
public struct NoResult: Codable, Sendable, Equatable {}

public struct ControlPong: Codable, Sendable, Equatable {
    public var pid: Int32
    public var keys: Int

    public init(pid: Int32, keys: Int) {
        self.pid = pid
        self.keys = keys
    }
}

/// Where a managed key's rotation stands: what `rotate`, `revoke` and `status`
/// answer over the socket (never a secret).
public struct KeyProgress: Codable, Sendable, Equatable {
    public var key: String
    public var phase: Phase
    /// Generation of the current key.
    public var generation: Int
    /// Generation of the key being created, verified or deployed, if any.
    public var pendingGeneration: Int?
    public var currentKeyID: String?
    public var retiringKeyID: String?
    public var retireAt: Date?
    public var revoking: Bool
    public var revokeQueued: Bool
    public var lastError: StepFailure?
    public var nextDue: Date?
    /// For rotate and revoke: what the daemon did with the request, for people.
    public var message: String?

    public init(record: KeyRecord, message: String? = nil) {
        key = record.name
        phase = record.phase
        generation = record.generation
        pendingGeneration = record.pending?.generation
        currentKeyID = record.current?.id
        retiringKeyID = record.previous?.key.id
        retireAt = record.previous?.retireAt
        revoking = record.revoking
        revokeQueued = record.revokeQueued
        lastError = record.lastError
        nextDue = record.nextDue
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case key, phase, generation, revoking, message
        case pendingGeneration = "pending_generation"
        case currentKeyID = "current_key_id"
        case retiringKeyID = "retiring_key_id"
        case retireAt = "retire_at"
        case revokeQueued = "revoke_queued"
        case lastError = "last_error"
        case nextDue = "next_due"
    }
}

public struct DeletedOrphan: Codable, Sendable, Equatable {
    public var keyID: String
    public var name: String

    public init(keyID: String, name: String) {
        self.keyID = keyID
        self.name = name
    }

    enum CodingKeys: String, CodingKey {
        case name
        case keyID = "key_id"
    }
}

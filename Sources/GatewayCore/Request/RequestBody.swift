/// What the gateway must know of a request body before it forwards it, read without
/// re-encoding it (a JSON round trip would change numbers and key order the consumer sent).
public struct RequestFacts: Sendable, Equatable {
    /// Top-level `"model"`.
    public var model: String
    /// Top-level `"stream": true`.
    public var stream: Bool
    /// Top-level `"max_tokens"` when present and an integer (null counts as absent).
    public var maxTokens: Int?

    public init(model: String, stream: Bool, maxTokens: Int?) {
        self.model = model
        self.stream = stream
        self.maxTokens = maxTokens
    }
}

/// Why a body was refused (400), in words for the consumer.
public struct BodyProblem: Error, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

public enum RequestBody {
    /// Validates that `bytes` is one JSON object (the whole grammar, UTF-8) and reads the facts.
    /// Errors: not JSON / not an object / `model` missing or not a string / `stream` not a bool /
    /// `max_tokens` not a non-negative integer or null.
    public static func inspect(_ bytes: [UInt8]) throws(BodyProblem) -> RequestFacts {
        // STUB
        throw BodyProblem("not implemented")
    }

    /// `bytes` (already inspected) with top-level `max_tokens` set to `value`: the member
    /// replaced in place when present (also when null), appended otherwise. Every other
    /// byte is kept.
    public static func settingMaxTokens(_ bytes: [UInt8], to value: Int) -> [UInt8] {
        // STUB
        bytes
    }
}

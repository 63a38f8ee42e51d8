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
    /// The top-level members the gateway reads; every other byte passes through unread.
    static let factKeys: Set<String> = ["model", "stream", "max_tokens"]

    /// Validates that `bytes` is one JSON object (the whole grammar, UTF-8) and reads the facts.
    /// Errors: not JSON / not an object / `model` missing or not a string / `stream` not a bool /
    /// `max_tokens` not a non-negative integer or null / one of those three given twice
    /// (the gateway would check one and upstream might use the other).
    public static func inspect(_ bytes: [UInt8]) throws(BodyProblem) -> RequestFacts {
        let object: JSONScanner.ObjectMembers
        do {
            object = try JSONScanner.topLevelObject(bytes, keys: factKeys)
        } catch {
            throw BodyProblem("invalid JSON body: \(error.message) (at byte \(error.offset))")
        }
        var seen: Set<String> = []
        for member in object.members where !seen.insert(member.key).inserted {
            throw BodyProblem("\"\(member.key)\" is given twice; give it once")
        }
        func value(_ key: String) -> ArraySlice<UInt8>? {
            object.members.first { $0.key == key }.map { bytes[$0.value] }
        }

        guard let modelToken = value("model") else { throw BodyProblem("missing \"model\"") }
        guard modelToken.first == UInt8(ascii: "\"") else { throw BodyProblem("\"model\" must be a string") }
        var scanner = JSONScanner(bytes, at: modelToken.startIndex)
        guard let modelBytes = try? scanner.scanString(decode: true), let model = String(validating: modelBytes, as: UTF8.self),
              !model.isEmpty
        else { throw BodyProblem("\"model\" must be a non-empty string") }

        var stream = false
        if let token = value("stream"), !token.elementsEqual("null".utf8), !token.elementsEqual("false".utf8) {
            guard token.elementsEqual("true".utf8) else { throw BodyProblem("\"stream\" must be true or false") }
            stream = true
        }

        var maxTokens: Int?
        if let token = value("max_tokens"), !token.elementsEqual("null".utf8) {
            guard let number = JSONScanner.nonNegativeInteger(token) else {
                throw BodyProblem("\"max_tokens\" must be a non-negative integer")
            }
            maxTokens = number
        }
        return RequestFacts(model: model, stream: stream, maxTokens: maxTokens)
    }

    /// `bytes` (already inspected) with top-level `max_tokens` set to `value`: the member
    /// replaced in place when present (also when null), appended otherwise. Every other
    /// byte is kept. Bytes that are not a JSON object come back unchanged (`inspect`
    /// refuses them first).
    public static func settingMaxTokens(_ bytes: [UInt8], to value: Int) -> [UInt8] {
        guard let object = try? JSONScanner.topLevelObject(bytes, keys: ["max_tokens"]) else { return bytes }
        let digits = Array(String(value).utf8)
        var result = bytes
        if let member = object.members.last {
            result.replaceSubrange(member.value, with: digits)
        } else {
            let member = Array("\"max_tokens\":".utf8) + digits
            result.insert(contentsOf: (object.count == 0 ? [] : [UInt8(ascii: ",")]) + member, at: object.closingBrace)
        }
        return result
    }
}

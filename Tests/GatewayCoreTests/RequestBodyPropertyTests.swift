import Foundation
@testable import GatewayCore
import Testing

/// Random documents checked against Foundation's JSONSerialization: the gateway must
/// accept exactly the bodies a JSON parser accepts (so it neither lets a body through
/// that it misread, nor refuses a good one), read the same facts, and edit only max_tokens.
@Suite struct RequestBodyPropertyTests {
    static func foundationObject(_ bytes: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    static func scannerAccepts(_ bytes: [UInt8]) -> Bool {
        (try? JSONScanner.topLevelObject(bytes, keys: [])) != nil
    }

    @Test func validDocumentsAndTheirMutationsAgreeWithFoundation() {
        var generator = RandomJSON(seed: 12)
        var valid = 0
        var invalid = 0
        var trailingCommas = 0
        var hugeNumbers = 0
        for round in 0..<20_000 {
            let document = Array(generator.object(depth: 0, members: []).utf8)
            #expect(Self.scannerAccepts(document), "round \(round): \(String(decoding: document, as: UTF8.self))")
            #expect(Self.foundationObject(document) != nil, "generator produced invalid JSON: \(String(decoding: document, as: UTF8.self))")
            let mutant = generator.mutated(document)
            let ours = Result { () throws(JSONScanner.Failure) in try JSONScanner.topLevelObject(mutant, keys: []) }
            let foundation = Self.foundationObject(mutant) != nil
            switch (ours, foundation) {
            case (.success, true): valid += 1
            case (.failure, false): invalid += 1
            case (.failure(let failure), true) where Self.isTrailingComma(mutant, at: failure.offset):
                trailingCommas += 1  // Foundation accepts `[1,]` and `{"a":1,}`; RFC 8259 does not
            case (.success, false) where Self.hasHugeExponent(mutant):
                hugeNumbers += 1  // valid grammar; Foundation refuses numbers beyond Double
            default:
                Issue.record("round \(round): ours \(ours), Foundation \(foundation): \(mutant.map { String($0, radix: 16) })")
            }
        }
        // The mutations must exercise both answers, or the comparison proves little.
        #expect(valid > 2_000 && invalid > 2_000, "valid \(valid), invalid \(invalid)")
        print("JSON mutations: \(valid) valid, \(invalid) invalid, \(trailingCommas) trailing commas and \(hugeNumbers) numbers beyond Double that only Foundation judged otherwise")
    }

    /// The scanner stopped at a `}` or `]` right after a `,` (blanks between).
    static func isTrailingComma(_ bytes: [UInt8], at offset: Int) -> Bool {
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: "}") || bytes[offset] == UInt8(ascii: "]") else { return false }
        let before = bytes[..<offset].last { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        return before == UInt8(ascii: ",")
    }

    /// An exponent of three or more digits outside a string: beyond Double for our numbers.
    static func hasHugeExponent(_ bytes: [UInt8]) -> Bool {
        let text = String(decoding: bytes, as: UTF8.self)
        return text.contains(/[0-9][eE][+-]?[0-9]{3,}/)
    }

    @Test func factsAgreeWithFoundation() throws {
        var generator = RandomJSON(seed: 34)
        for _ in 0..<5_000 {
            let model = ["mistral-small-latest", "é/🙂 \"x\"", "a\\b", "\u{1}\u{2028}"][generator.int(0...3)]
            var members = [(generator.quoted("model"), generator.quoted(model))]
            let stream = ["true", "false", "null", nil][generator.int(0...3)]
            if let stream { members.append((generator.quoted("stream"), stream)) }
            let maxTokens = ["0", "1024", "null", nil][generator.int(0...3)]
            if let maxTokens { members.append((generator.quoted("max_tokens"), maxTokens)) }
            let text = generator.object(depth: 0, members: members)
            let bytes = Array(text.utf8)
            let reference = try #require(Self.foundationObject(bytes))
            // A random member may repeat a fact key; Foundation then keeps one, we refuse.
            guard reference.count == Set(Self.topLevelKeys(reference)).count else { continue }
            let facts: RequestFacts
            do {
                facts = try RequestBody.inspect(bytes)
            } catch {
                let duplicate = error.message.contains("given twice")
                #expect(duplicate, "\(error.message): \(text)")
                continue
            }
            #expect(facts.model == reference["model"] as? String)
            #expect(facts.model == model)
            #expect(facts.stream == (stream == "true"))
            #expect(facts.maxTokens == maxTokens.flatMap { Int($0) })
        }
    }

    /// Foundation's `contains("")` is false.
    static func isInfix(_ part: String, of whole: String) -> Bool {
        part.isEmpty || whole.contains(part)
    }

    static func canonical(_ object: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed])
    }

    static func topLevelKeys(_ object: [String: Any]) -> [String] { Array(object.keys) }

    @Test func settingMaxTokensKeepsEveryOtherByte() throws {
        var generator = RandomJSON(seed: 56)
        for _ in 0..<5_000 {
            var members = [(generator.quoted("model"), "\"m\"")]
            let existing = ["7", "null", "123456789", nil][generator.int(0...3)]
            if let existing { members.append((generator.quoted("max_tokens"), existing)) }
            let original = Array(generator.object(depth: 0, members: members).utf8)
            guard (try? RequestBody.inspect(original)) != nil else { continue }  // a random duplicate
            let value = generator.int(0...1_000_000)
            let edited = RequestBody.settingMaxTokens(original, to: value)

            let facts = try RequestBody.inspect(edited)
            #expect(facts.maxTokens == value)
            let before = try #require(Self.foundationObject(original))
            var after = try #require(Self.foundationObject(edited))
            #expect(after["max_tokens"] as? Int == value)
            after["max_tokens"] = before["max_tokens"]
            if before["max_tokens"] == nil { after.removeValue(forKey: "max_tokens") }
            #expect(try Self.canonical(after) == Self.canonical(before))

            // Byte level: one contiguous run changed, and it is the value or the new member.
            let prefix = zip(original, edited).prefix { $0 == $1 }.count
            let suffix = zip(original.reversed(), edited.reversed()).prefix { $0 == $1 }.count
            let common = min(prefix, original.count, edited.count)
            let tail = min(suffix, original.count - common, edited.count - common)
            let removed = String(decoding: original[common..<(original.count - tail)], as: UTF8.self)
            let inserted = String(decoding: edited[common..<(edited.count - tail)], as: UTF8.self)
            if let existing {
                // The common prefix and suffix may take digits the old and new value share.
                #expect(Self.isInfix(removed, of: existing) && Self.isInfix(inserted, of: String(value)), "\(removed) → \(inserted)")
            } else {
                #expect(removed.isEmpty)
                #expect(Self.isInfix(inserted, of: ",\"max_tokens\":\(value)"), "\(inserted)")
            }
        }
    }
}

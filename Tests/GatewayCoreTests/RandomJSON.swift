import KeyRotation

/// Random JSON text for property tests: every grammar production, random blanks,
/// escapes (including surrogate pairs) and multi-byte UTF-8, at a bounded depth.
/// Numbers stay within Double's range so any parser can represent them.
struct RandomJSON {
    var random: SplitMix64

    init(seed: UInt64) {
        random = SplitMix64(seed: seed)
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int {
        Int.random(in: range, using: &random)
    }

    mutating func int(_ range: Range<Int>) -> Int {
        Int.random(in: range, using: &random)
    }

    mutating func chance(_ percent: Int) -> Bool {
        int(1...100) <= percent
    }

    mutating func blank() -> String {
        guard chance(30) else { return "" }
        return String((0..<int(1...3)).map { _ in [" ", "\t", "\n", "\r\n"][int(0...3)] }.joined())
    }

    mutating func value(depth: Int) -> String {
        let kinds = depth >= 5 ? 5 : 7
        switch int(0..<kinds) {
        case 0: return ["true", "false", "null"][int(0...2)]
        case 1, 2: return number()
        case 3, 4: return string()
        case 5: return object(depth: depth + 1, members: [])
        default:
            let count = int(0...4)
            let elements = (0..<count).map { _ in blank() + value(depth: depth + 1) + blank() }
            return "[" + (elements.isEmpty ? blank() : elements.joined(separator: ",")) + "]"
        }
    }

    /// An object with random members and `members` (key text, value text) placed among them.
    mutating func object(depth: Int, members fixed: [(String, String)]) -> String {
        var members = (0..<int(0...4)).map { _ in (string(), value(depth: depth)) }
        for member in fixed { members.insert(member, at: int(0...members.count)) }
        let parts = members.map { blank() + $0.0 + blank() + ":" + blank() + $0.1 + blank() }
        return "{" + (parts.isEmpty ? blank() : parts.joined(separator: ",")) + "}"
    }

    mutating func number() -> String {
        var text = chance(30) ? "-" : ""
        text += chance(20) ? "0" : String(int(1...9)) + String((0..<int(0...8)).map { _ in Character(String(int(0...9))) })
        if chance(30) { text += "." + String((0..<int(1...4)).map { _ in Character(String(int(0...9))) }) }
        if chance(20) { text += ["e", "E"][int(0...1)] + ["", "+", "-"][int(0...2)] + String(int(0...9)) }
        return text
    }

    static let pieces: [String] = ["a", "Z", "0", " ", "é", "日", "🙂", "\u{7F}", "-", "/", "model"]

    mutating func string() -> String {
        "\"" + (0..<int(0...6)).map { _ in chance(30) ? escape() : Self.pieces[int(0..<Self.pieces.count)] }.joined() + "\""
    }

    /// `text` as a JSON string in which characters are escaped at random (and those
    /// that must be, always).
    mutating func quoted(_ text: String) -> String {
        "\"" + text.unicodeScalars.map { scalar in
            let must = scalar == "\"" || scalar == "\\" || scalar.value < 0x20
            return must || chance(40) ? unicodeEscape(scalar) : String(scalar)
        }.joined() + "\""
    }

    mutating func escape() -> String {
        switch int(0...9) {
        case 0: return #"\""#
        case 1: return #"\\"#
        case 2: return #"\/"#
        case 3: return [#"\b"#, #"\f"#, #"\n"#, #"\r"#, #"\t"#][int(0...4)]
        case 4: return #"\ud83d\ude00"#
        case 5: return #"\uD834\uDD1E"#
        default:
            let scalars: [Unicode.Scalar] = ["\u{0}", "\u{1F}", "A", "é", "\u{2028}", "\u{FFFF}", "\u{10000}"]
            return unicodeEscape(scalars[int(0..<scalars.count)])
        }
    }

    mutating func unicodeEscape(_ scalar: Unicode.Scalar) -> String {
        func hex(_ unit: UInt16) -> String {
            let digits = String(unit, radix: 16, uppercase: chance(50))
            return #"\u"# + String(repeating: "0", count: 4 - digits.count) + digits
        }
        return String(scalar).utf16.map { hex($0) }.joined()
    }

    /// `bytes` with one random byte deleted, inserted or replaced. No NUL and no change
    /// to the first byte, so Foundation does not guess UTF-16 or UTF-32 from the start.
    mutating func mutated(_ bytes: [UInt8]) -> [UInt8] {
        let alphabet: [UInt8] = Array(#"{}[],:"\ 0 1-.eEtnu/a"#.utf8) + [0x01, 0x0A, 0x1F, 0x7F, 0x80, 0xBF, 0xC3, 0xED, 0xF4, 0xFF]
        var result = bytes
        guard result.count > 1 else { return result }
        let position = int(1..<result.count)
        switch int(0...2) {
        case 0: result.remove(at: position)
        case 1: result.insert(alphabet[int(0..<alphabet.count)], at: position)
        default: result[position] = alphabet[int(0..<alphabet.count)]
        }
        return result
    }
}

import Foundation
import KeyRotation

/// The knobs every fuzz suite shares: a fixed seed, so a failure reproduces, and
/// the switch between a sample and every case for the runs of the real binary.
public enum Fuzzing {
    /// "keyrotd!" in ASCII. Override with `KEYROTD_FUZZ_SEED` (decimal or 0x-hex) to
    /// replay a reported seed or to explore others.
    public static let defaultSeed: UInt64 = 0x6B65_7972_6F74_6421

    public static var seed: UInt64 {
        guard let text = ProcessInfo.processInfo.environment["KEYROTD_FUZZ_SEED"] else { return defaultSeed }
        let parsed = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
        return parsed ?? defaultSeed
    }

    public static var seedText: String { "0x" + String(seed, radix: 16) }

    /// `KEYROTD_LONG_TESTS=1` (`scripts/test --long`): every case through the binary.
    public static var long: Bool { ProcessInfo.processInfo.environment["KEYROTD_LONG_TESTS"] == "1" }

    /// Every case when `long`, else `count` of them spread evenly over the whole set.
    public static func sample<T>(_ cases: [T], count: Int) -> [T] {
        long ? cases : spread(cases, count: count)
    }

    /// `count` of `cases` spread evenly over the whole set, the first one included.
    public static func spread<T>(_ cases: [T], count: Int) -> [T] {
        guard cases.count > count, count > 0 else { return cases }
        return (0..<count).map { cases[$0 * cases.count / count] }
    }

    /// `bytes` for a failure message: printable ASCII and newlines as they are,
    /// everything else as `\xNN`, and only the part around `focus` (where the
    /// mutation landed) when the whole would be longer than `limit`.
    public static func display(_ bytes: [UInt8], around focus: Int = 0, limit: Int = 1200) -> String {
        let start = max(0, min(focus - limit / 3, bytes.count - limit))
        let end = min(bytes.count, start + limit)
        var text = start > 0 ? "…(\(start) bytes before)…" : ""
        for byte in bytes[start..<end] {
            switch byte {
            case 0x0A: text += "\n"
            case 0x09: text += "\\t"
            case 0x20..<0x7F: text.unicodeScalars.append(Unicode.Scalar(byte))
            default: text += "\\x" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16)
            }
        }
        if end < bytes.count { text += "…(\(bytes.count - end) bytes more)" }
        return text
    }

    /// The index of the first byte where `a` and `b` differ (the shorter length if
    /// one is a prefix of the other).
    public static func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
        zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
    }
}

extension SplitMix64 {
    public mutating func below(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &self) }

    public mutating func pick<T>(_ choices: [T]) -> T { choices[below(choices.count)] }
}

// MARK: - Mutations of a configuration

/// One edit of a configuration's bytes. Indices are taken modulo the input's size
/// when applied, so any mutation applies to any input.
public enum ConfigMutation: Sendable, CustomStringConvertible {
    case deleteLine(Int)
    case duplicateLine(Int)
    case swapLines(Int, Int)
    case truncate(at: Int)
    case flipByte(at: Int, mask: UInt8)
    case insertBytes(at: Int, [UInt8])
    case deleteBytes(at: Int, count: Int)
    /// Replaces what follows the first "=" on a line.
    case replaceValue(line: Int, with: String)
    case insertLine(at: Int, String)

    public func apply(to input: [UInt8]) -> [UInt8] {
        var lines = input.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
        func joined() -> [UInt8] { Array(lines.joined(separator: [0x0A])) }
        switch self {
        case .deleteLine(let line):
            lines.remove(at: line % lines.count)
            return joined()
        case .duplicateLine(let line):
            lines.insert(lines[line % lines.count], at: line % lines.count)
            return joined()
        case .swapLines(let a, let b):
            lines.swapAt(a % lines.count, b % lines.count)
            return joined()
        case .truncate(let offset):
            return Array(input.prefix(offset % (input.count + 1)))
        case .flipByte(let offset, let mask):
            guard !input.isEmpty else { return input }
            var bytes = input
            bytes[offset % bytes.count] ^= mask
            return bytes
        case .insertBytes(let offset, let payload):
            var bytes = input
            bytes.insert(contentsOf: payload, at: offset % (bytes.count + 1))
            return bytes
        case .deleteBytes(let offset, let count):
            guard !input.isEmpty else { return input }
            let start = offset % input.count
            return Array(input[..<start] + input[min(input.count, start + count)...])
        case .replaceValue(let line, let value):
            let index = line % lines.count
            guard let equals = lines[index].firstIndex(of: UInt8(ascii: "=")) else { return input }
            lines[index] = Array(lines[index][...equals]) + Array(" \(value)".utf8)
            return joined()
        case .insertLine(let line, let text):
            lines.insert(Array(text.utf8), at: line % (lines.count + 1))
            return joined()
        }
    }

    public var description: String {
        func short(_ bytes: [UInt8]) -> String {
            let shown = Fuzzing.display(Array(bytes.prefix(40)), limit: 40).replacingOccurrences(of: "\n", with: "\\n")
            return bytes.count > 40 ? "\"\(shown)…\" (\(bytes.count) bytes)" : "\"\(shown)\""
        }
        return switch self {
        case .deleteLine(let line): "delete line \(line)"
        case .duplicateLine(let line): "duplicate line \(line)"
        case .swapLines(let a, let b): "swap lines \(a) and \(b)"
        case .truncate(let offset): "truncate at \(offset)"
        case .flipByte(let offset, let mask): "flip byte \(offset) with mask 0x\(String(mask, radix: 16))"
        case .insertBytes(let offset, let payload): "insert \(short(payload)) at \(offset)"
        case .deleteBytes(let offset, let count): "delete \(count) bytes at \(offset)"
        case .replaceValue(let line, let value): "set the value on line \(line) to \(short(Array(value.utf8)))"
        case .insertLine(let line, let text): "insert line \(short(Array(text.utf8))) before line \(line)"
        }
    }

    /// A mutation drawn for `input`: positions inside it, payloads from the lists
    /// below. Value replacements and inserted lines are drawn more often than raw
    /// byte edits, since they get past the TOML parser to the validation.
    public static func random(for input: [UInt8], using rng: inout SplitMix64) -> ConfigMutation {
        let size = max(1, input.count)
        let lineCount = input.count(where: { $0 == 0x0A }) + 1
        let assignments = input.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated()
            .filter { $0.element.contains(UInt8(ascii: "=")) }.map(\.offset)
        switch rng.below(12) {
        case 0: return .deleteLine(rng.below(lineCount))
        case 1: return .duplicateLine(rng.below(lineCount))
        case 2: return .swapLines(rng.below(lineCount), rng.below(lineCount))
        case 3: return .truncate(at: rng.below(size + 1))
        case 4:
            let mask = rng.below(2) == 0 ? UInt8(1) << UInt8(rng.below(8)) : UInt8(1 + rng.below(255))
            return .flipByte(at: rng.below(size), mask: mask)
        case 5: return .insertBytes(at: rng.below(size + 1), rng.pick(bytePayloads))
        case 6: return .insertBytes(at: rng.below(size + 1), (0..<1 + rng.below(8)).map { _ in UInt8(rng.below(256)) })
        case 7: return .deleteBytes(at: rng.below(size), count: 1 + rng.below(16))
        case 8, 9, 10:
            guard !assignments.isEmpty else { return .insertLine(at: rng.below(lineCount + 1), rng.pick(linePayloads)) }
            return .replaceValue(line: rng.pick(assignments), with: rng.pick(valuePayloads))
        default: return .insertLine(at: rng.below(lineCount + 1), rng.pick(linePayloads))
        }
    }

    static let bytePayloads: [[UInt8]] = [
        [0x00], [0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xEF, 0xBB, 0xBF],
        [0xE2, 0x80, 0xAE], [0x0D], [0x0A], [0x09], Array("\"'[]{}=#.,\\".utf8),
        [UInt8(ascii: "\"")], [UInt8(ascii: "[")], [UInt8(ascii: "]")], [UInt8(ascii: "{")], [UInt8(ascii: "=")],
        [UInt8(ascii: "\\")], [UInt8(ascii: "#")], [UInt8(ascii: ".")],
        [UInt8](repeating: UInt8(ascii: "["), count: 5000),
        [UInt8](repeating: UInt8(ascii: "9"), count: 400),
    ]

    static let valuePayloads: [String] = [
        // wrong types
        "true", "3.14", "1979-05-27T07:32:00Z", "07:32:00", "[]", "[1, 2, 3]", "[\"a\", 1]", "{}", "{ a = 1 }",
        "'literal'", "'''multi\nline'''",
        // numbers and durations out of range
        "0", "-1", "-86400", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
        "99999999999999999999999999", "1e309", "nan", "-inf", "0x7fffffffffffffff", "1_000_000",
        "\"\"", "\"0\"", "\"0s\"", "\"-5d\"", "\"1ms\"", "\"3651d\"", "\"99999999999999999999d\"",
        "\"106751991167d\"", "\"292277024y\"", "\"1.5.5h\"", "\"1e3s\"", "\"5 fortnights\"", "\"µs\"", "\".d\"",
        // windows
        "\"Mon..Fri 09:00..17:00\"", "\"Fri..Mon 22:00..02:00\"", "\"Mon..Sun 25:00..26:00\"",
        "\"Mon 09:00..09:00\"", "\"Sat,Sun\"", "\"..\"", "\"Mon..\"", "\"00:00..24:00\"", "\"Mon..Fri 9..17\"",
        "\"Tue..Mon 23:59..00:00\"", "\"Mon..Fri 09:00..17:00 extra\"",
        // paths, URLs, names
        "\"relative/path\"", "\"/\"", "\"/nonexistent/hook\"", "[\"/nonexistent/hook\"]", "[\"/a\", \"/a\"]",
        "\"http://example.com\"", "\"https://user:pw@example.com\"", "\"ftp://example.com\"",
        "\"https://[::1\"", "\"http://127.0.0.1:9?x=1\"", "\"https://\"", "\"not-a-uuid\"",
        "\"00000000-0000-0000-0000-000000000000\"", "\"openai\"", "\"a/b\"", "\"..\"",
        // thresholds
        "[101]", "[50, 50]", "[0]", "[95, 80]", "[50, \"80\"]", "[-1, 200]",
        // strings with escapes, control characters and lines in them
        "\"line one\\nline two\"", "[\"/tmp/x\\ny\", \"/tmp/x\\ny\"]", "\"tab\\there\"", "\"\\u0000\"",
        "\"\\uD800\"", "\"\\q\"", "\"\\u202Eevil\"",
        // unbalanced and deep
        "\"\"\"unterminated", "\"unterminated", "[1, 2", "{ a = ", "]", "= 1",
        String(repeating: "[", count: 300) + String(repeating: "]", count: 300),
        String(repeating: "{ a = ", count: 300) + "1" + String(repeating: " }", count: 300),
        "\"" + String(repeating: "x", count: 100_000) + "\"",
    ]

    static let linePayloads: [String] = [
        "[daemon]", "[defaults]", "[audit]", "[budget]", "[keys.dev-team]", "[providers.mistral]", "[[keys]]",
        "[keys]", "keys = 1", "providers = \"x\"", "[unknown]", "[keys.\"\"]", "[keys.\"../../etc\"]",
        "[keys.\(String(repeating: "k", count: 100))]", "[keys.\"bad\\nname\"]", "\"bad\\nkey\" = 1",
        "[" + Array(repeating: "a", count: 2000).joined(separator: ".") + "]",
        Array(repeating: "b", count: 2000).joined(separator: ".") + " = 1",
        "rotate_every = \"1d\"", "overlap = \"24h\"", "jitter = \"1d\"", "window = \"Sat..Sun 00:00..01:00\"",
        "hooks = []", "adopt = \"\"", "adopt = \"key-1\"", "unknown_key = 1", "type = 5",
        "[\"unterminated", "[unbalanced", "]", "=", "= 1", "key =", "\"key", "x = \"\"\"", "x = 1 y = 2",
        "\u{FEFF}bom = 1", "\t\t  # only a comment", "[[a.b]]",
        "[keys.extra]\nprovider = \"mistral\"",
        "[budget]\nthresholds = [50, 80, 95, 100, 100]", "[audit]\nevery = \"0\"",
        "[defaults]\nwindow = \"Mon..Fri 09:00..17:00\"\nmax_overlap = \"1h\"",
    ]
}

/// A configuration after one to three mutations, with where it came from.
public struct ConfigFuzzCase: Sendable, CustomStringConvertible {
    public var base: String
    public var index: Int
    public var mutations: [ConfigMutation]
    public var bytes: [UInt8]
    /// Where the first mutation changed the base, for showing the right part.
    public var focus: Int

    /// `count` cases per base, drawn from `seed`: the same seed gives the same cases.
    public static func cases(bases: [(name: String, bytes: [UInt8])], count: Int, seed: UInt64) -> [ConfigFuzzCase] {
        var rng = SplitMix64(seed: seed)
        var cases: [ConfigFuzzCase] = []
        for base in bases {
            for index in 0..<count {
                var bytes = base.bytes
                var mutations: [ConfigMutation] = []
                for _ in 0..<(rng.below(5) < 3 ? 1 : 2 + rng.below(2)) {
                    let mutation = ConfigMutation.random(for: bytes, using: &rng)
                    mutations.append(mutation)
                    bytes = mutation.apply(to: bytes)
                }
                cases.append(ConfigFuzzCase(
                    base: base.name, index: index, mutations: mutations, bytes: bytes,
                    focus: Fuzzing.firstDifference(base.bytes, bytes)))
            }
        }
        return cases
    }

    public var description: String {
        """
        seed \(Fuzzing.seedText) (KEYROTD_FUZZ_SEED), case \(base)#\(index): \
        \(mutations.map(\.description).joined(separator: ", then "))
        --- mutated configuration (\(bytes.count) bytes)
        \(Fuzzing.display(bytes, around: focus))
        ---
        """
    }
}

// MARK: - Damage to a state file

/// One way to damage a state file's bytes.
public enum StateDamage: Sendable, CustomStringConvertible {
    case truncate(at: Int)
    case flip(at: Int, mask: UInt8)
    /// Overwrites bytes from `at` on (and appends past the end).
    case garble(at: Int, [UInt8])

    public func apply(to input: [UInt8]) -> [UInt8] {
        switch self {
        case .truncate(let offset):
            return Array(input.prefix(offset))
        case .flip(let offset, let mask):
            var bytes = input
            bytes[offset] ^= mask
            return bytes
        case .garble(let offset, let replacement):
            var bytes = input
            for (index, byte) in replacement.enumerated() {
                if offset + index < bytes.count { bytes[offset + index] = byte } else { bytes.append(byte) }
            }
            return bytes
        }
    }

    /// Never the bytes themselves: a state file can hold a pending secret.
    public var description: String {
        switch self {
        case .truncate(let offset): "truncated to \(offset) bytes"
        case .flip(let offset, let mask): "byte \(offset) flipped with mask 0x\(String(mask, radix: 16))"
        case .garble(let offset, let bytes): "\(bytes.count) bytes garbled from \(offset)"
        }
    }

    /// Truncation at every offset of a `size`-byte file, `flips` single-byte flips at
    /// random offsets (an eighth of them in the header line, where no checksum helps),
    /// and `garbles` multi-byte overwrites.
    public static func all(size: Int, headerSize: Int, flips: Int, garbles: Int, seed: UInt64) -> [StateDamage] {
        var rng = SplitMix64(seed: seed)
        var damages = (0..<size).map { StateDamage.truncate(at: $0) }
        for index in 0..<flips {
            let offset = index % 8 == 0 ? rng.below(headerSize) : rng.below(size)
            let mask = rng.below(2) == 0 ? UInt8(1) << UInt8(rng.below(8)) : UInt8(1 + rng.below(255))
            damages.append(.flip(at: offset, mask: mask))
        }
        for _ in 0..<garbles {
            let count = 2 + rng.below(64)
            damages.append(.garble(at: rng.below(size), (0..<count).map { _ in UInt8(rng.below(256)) }))
        }
        return damages
    }
}

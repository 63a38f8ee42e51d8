/// A strict JSON validator over bytes (RFC 8259, UTF-8) that remembers where chosen
/// members of one object are, so the gateway can read and edit a few top-level facts
/// without re-encoding the body (a JSON round trip would change numbers, escapes and
/// key order the consumer sent).
///
/// Stricter than the RFC where the RFC leaves room: a byte-order mark, an escaped lone
/// surrogate (`"\ud800"`) and nesting deeper than `maxDepth` are refused, so every
/// accepted document means the same to any parser the request may reach.
struct JSONScanner {
    /// Deep enough for any real request; a bound on the work a hostile body can cause.
    static let maxDepth = 128

    /// What `scanObject` found about one object.
    struct ObjectMembers {
        /// The members asked for, by decoded key, each value's byte range; a key given
        /// twice appears twice.
        var members: [(key: String, value: Range<Int>)] = []
        /// Index of the object's closing `}`.
        var closingBrace = 0
        /// How many members the object has in all.
        var count = 0
    }

    struct Failure: Error {
        var message: String
        var offset: Int
    }

    let bytes: [UInt8]
    private(set) var index: Int
    private var depth = 0

    init(_ bytes: [UInt8], at index: Int = 0) {
        self.bytes = bytes
        self.index = index
    }

    /// Validates that the whole of `bytes` is one JSON object and returns where the
    /// members named in `keys` are.
    static func topLevelObject(_ bytes: [UInt8], keys: Set<String>) throws(Failure) -> ObjectMembers {
        var scanner = JSONScanner(bytes)
        scanner.skipWhitespace()
        guard scanner.peek == UInt8(ascii: "{") else {
            throw Failure(message: scanner.peek == nil ? "the body is empty" : "the body is not a JSON object", offset: scanner.index)
        }
        let members = try scanner.scanObject(keys: keys)
        scanner.skipWhitespace()
        guard scanner.index == bytes.count else { throw scanner.failure("unexpected data after the JSON object") }
        return members
    }

    /// Scans the value at `index`, which must be an object, recording the members named in `keys`.
    mutating func scanObject(keys: Set<String>) throws(Failure) -> ObjectMembers {
        try enter()
        index += 1
        var result = ObjectMembers()
        skipWhitespace()
        if peek == UInt8(ascii: "}") {
            result.closingBrace = index
            index += 1
            depth -= 1
            return result
        }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else { throw failure("expected a member name in quotes") }
            let key = try scanString(decode: !keys.isEmpty)
            skipWhitespace()
            guard peek == UInt8(ascii: ":") else { throw failure("expected ':' after a member name") }
            index += 1
            skipWhitespace()
            let start = index
            try scanValue()
            result.count += 1
            if let key, let name = String(validating: key, as: UTF8.self), keys.contains(name) {
                result.members.append((name, start..<index))
            }
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","):
                index += 1
            case UInt8(ascii: "}"):
                result.closingBrace = index
                index += 1
                depth -= 1
                return result
            default:
                throw failure("expected ',' or '}' in an object")
            }
        }
    }

    mutating func scanValue() throws(Failure) {
        switch peek {
        case UInt8(ascii: "{"):
            _ = try scanObject(keys: [])
        case UInt8(ascii: "["):
            try scanArray()
        case UInt8(ascii: "\""):
            _ = try scanString(decode: false)
        case UInt8(ascii: "t"):
            try literal("true")
        case UInt8(ascii: "f"):
            try literal("false")
        case UInt8(ascii: "n"):
            try literal("null")
        case let byte? where byte == UInt8(ascii: "-") || Self.isDigit(byte):
            try scanNumber()
        case nil:
            throw failure("unexpected end of the JSON text")
        default:
            throw failure("expected a JSON value")
        }
    }

    private mutating func scanArray() throws(Failure) {
        try enter()
        index += 1
        skipWhitespace()
        if peek == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return
        }
        while true {
            skipWhitespace()
            try scanValue()
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","):
                index += 1
            case UInt8(ascii: "]"):
                index += 1
                depth -= 1
                return
            default:
                throw failure("expected ',' or ']' in an array")
            }
        }
    }

    private mutating func enter() throws(Failure) {
        depth += 1
        guard depth <= Self.maxDepth else { throw failure("nested deeper than \(Self.maxDepth) levels") }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        let matches = word.withUTF8Buffer { expected in
            index + count <= bytes.count && bytes[index..<index + count].elementsEqual(expected)
        }
        guard matches else { throw failure("expected a JSON value") }
        index += count
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    private mutating func scanNumber() throws(Failure) {
        if peek == UInt8(ascii: "-") { index += 1 }
        if peek == UInt8(ascii: "0") {
            index += 1
        } else {
            guard digits() > 0 else { throw failure("expected a digit") }
        }
        if peek == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw failure("expected a digit after '.'") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw failure("expected a digit in the exponent") }
        }
    }

    private mutating func digits() -> Int {
        let start = index
        while let byte = peek, Self.isDigit(byte) { index += 1 }
        return index - start
    }

    /// Validates the string at `index` (escapes, UTF-8, no raw control characters);
    /// with `decode`, returns its decoded UTF-8 bytes.
    mutating func scanString(decode: Bool) throws(Failure) -> [UInt8]? {
        index += 1
        var decoded: [UInt8] = []
        while true {
            guard let byte = peek else { throw failure("unterminated string") }
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return decode ? decoded : nil
            case UInt8(ascii: "\\"):
                index += 1
                let scalar = try escape()
                if decode { UTF8.encode(scalar) { decoded.append($0) } }
            case 0..<0x20:
                throw failure("a control character must be escaped in a string")
            case 0..<0x80:
                index += 1
                if decode { decoded.append(byte) }
            default:
                let start = index
                try utf8Sequence()
                if decode { decoded.append(contentsOf: bytes[start..<index]) }
            }
        }
    }

    private mutating func escape() throws(Failure) -> Unicode.Scalar {
        guard let byte = peek else { throw failure("unterminated string") }
        index += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let unit = try hex4()
            if (0xD800..<0xDC00).contains(unit) {
                guard peek == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else {
                    throw failure("a high surrogate escape must be followed by a low one")
                }
                index += 2
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw failure("a high surrogate escape must be followed by a low one") }
                let value = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                guard let scalar = Unicode.Scalar(value) else { throw failure("invalid escape") }
                return scalar
            }
            guard let scalar = Unicode.Scalar(unit) else { throw failure("a lone low surrogate escape") }
            return scalar
        default:
            index -= 1
            throw failure("invalid escape")
        }
    }

    private mutating func hex4() throws(Failure) -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard let digit = peek?.hexDigitValue else { throw failure("expected four hex digits after \\u") }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    /// One multi-byte UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
    private mutating func utf8Sequence() throws(Failure) {
        let lead = bytes[index]
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondRange = 0x80...0x9F
        case 0xF0: length = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondRange = 0x80...0x8F
        default: throw failure("invalid UTF-8")
        }
        guard index + length <= bytes.count, secondRange.contains(bytes[index + 1]),
              bytes[index + 2..<index + length].allSatisfy({ (0x80...0xBF).contains($0) })
        else { throw failure("invalid UTF-8") }
        index += length
    }

    mutating func skipWhitespace() {
        while let byte = peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    func failure(_ message: String) -> Failure {
        Failure(message: message, offset: index)
    }

    static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }

    /// A JSON number token that is a non-negative integer (`0`, `42`; not `1.0`, `1e3`,
    /// `-1`) and fits in an `Int`, else nil.
    static func nonNegativeInteger(_ token: ArraySlice<UInt8>) -> Int? {
        guard !token.isEmpty, token.allSatisfy(isDigit) else { return nil }
        var value = 0
        for byte in token {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(byte - 0x30))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return value
    }
}

extension UInt8 {
    /// The value of an ASCII hex digit (either case), else nil.
    var hexDigitValue: UInt8? {
        switch self {
        case 0x30...0x39: self - 0x30
        case 0x41...0x46: self - 0x41 + 10
        case 0x61...0x66: self - 0x61 + 10
        default: nil
        }
    }
}

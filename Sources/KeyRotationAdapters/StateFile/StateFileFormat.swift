import Foundation

/// The on-disk envelope of a state file: one JSON document that `jq` reads, whose
/// integrity can be checked over exact bytes without re-serialising the body.
///
///     {"format":"keyrotd-state","version":1,"crc32":"cbf43926","length":1234,"state":
///     <body: exactly `length` bytes, a UTF-8 JSON object, its CRC-32 is `crc32`>
///     }
///
/// The first line has one canonical spelling (no spaces, fields in this order, decimal
/// integers without sign or leading zeros, eight lowercase hex digits) and is parsed
/// byte for byte, so any edit to it is detected even though it carries no checksum of
/// its own. The file ends with exactly "\n}\n".
enum StateFileFormat {
    struct Header: Equatable {
        var version: Int
        var crc32: UInt32
        var length: Int
    }

    enum DecodeFailure: Error, Equatable {
        case corrupt(String)
        case checksumMismatch(expected: UInt32, actual: UInt32, length: Int)
    }

    static let formatName = "keyrotd-state"

    /// Files larger than this are refused by `load` and never produced by `save`,
    /// so a runaway or hostile file cannot exhaust memory.
    static let maximumFileSize = 64 << 20

    /// Longer than any canonical header (its integers have at most 18 digits).
    static let maximumHeaderLength = 160

    static let trailer: [UInt8] = Array("\n}\n".utf8)

    private static let versionPrefix = Array("{\"format\":\"\(formatName)\",\"version\":".utf8)
    private static let crcPrefix = Array(",\"crc32\":\"".utf8)
    private static let lengthPrefix = Array("\",\"length\":".utf8)
    private static let statePrefix = Array(",\"state\":".utf8)
    private static let newline = UInt8(ascii: "\n")

    static func headerLine(_ header: Header) -> [UInt8] {
        versionPrefix + Array(String(header.version).utf8)
            + crcPrefix + Array(CRC32.hex(header.crc32).utf8)
            + lengthPrefix + Array(String(header.length).utf8)
            + statePrefix
    }

    static func encode(body: [UInt8], version: Int) -> [UInt8] {
        let header = Header(version: version, crc32: CRC32.checksum(body), length: body.count)
        var bytes = headerLine(header)
        bytes.reserveCapacity(bytes.count + 1 + body.count + trailer.count)
        bytes.append(newline)
        bytes.append(contentsOf: body)
        bytes.append(contentsOf: trailer)
        return bytes
    }

    /// Checks the envelope's structure, length and checksum. The body's meaning (schema
    /// version, being a JSON object) is left to the caller so that it can report a
    /// future version before judging a body it may not understand.
    static func decode(_ file: [UInt8]) -> Result<(header: Header, body: [UInt8]), DecodeFailure> {
        if file.isEmpty {
            return .failure(.corrupt("it is empty"))
        }
        let searchEnd = min(file.count, maximumHeaderLength + 1)
        guard let newlineIndex = file[..<searchEnd].firstIndex(of: newline) else {
            return .failure(.corrupt("its first line is not a complete keyrotd-state header"))
        }
        guard let header = parseHeader(file[..<newlineIndex]) else {
            return .failure(.corrupt("its first line is not a well-formed keyrotd-state header"))
        }
        let bodyStart = newlineIndex + 1
        let available = file.count - bodyStart - trailer.count
        guard available == header.length else {
            let held = max(0, file.count - bodyStart)
            return .failure(.corrupt(
                "it is truncated or has extra bytes: its header promises \(header.length) body bytes "
                    + "plus the closing line, but \(held) bytes follow the header"))
        }
        let bodyEnd = bodyStart + header.length
        guard file[bodyEnd...].elementsEqual(trailer) else {
            return .failure(.corrupt("it does not end with the closing line \"}\""))
        }
        let body = Array(file[bodyStart..<bodyEnd])
        let actual = CRC32.checksum(body)
        guard actual == header.crc32 else {
            return .failure(.checksumMismatch(expected: header.crc32, actual: actual, length: header.length))
        }
        return .success((header, body))
    }

    /// True when `body` is a UTF-8 JSON object, so that embedding it keeps the whole
    /// file one valid JSON document. NUL bytes and a first byte other than "{" are
    /// refused because Foundation would otherwise guess UTF-16/32 or skip a BOM.
    static func isJSONObject(_ body: [UInt8]) -> Bool {
        guard !body.contains(0),
              body.first(where: { !isJSONWhitespace($0) }) == UInt8(ascii: "{")
        else { return false }
        return (try? JSONSerialization.jsonObject(with: Data(body))) is [String: Any]
    }

    /// The cheap check `save` makes on every write: framed as an object (first and
    /// last non-blank bytes are braces) with no NUL. Its only caller hands it a
    /// JSONEncoder's output; the full parse (about 0.2 µs a byte here, 20 ms for
    /// 100 KB) is left to `load`, which runs once at start.
    static func isFramedAsJSONObject(_ body: [UInt8]) -> Bool {
        !body.contains(0)
            && body.first(where: { !isJSONWhitespace($0) }) == UInt8(ascii: "{")
            && body.last(where: { !isJSONWhitespace($0) }) == UInt8(ascii: "}")
    }

    private static func isJSONWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    static func parseHeader(_ line: ArraySlice<UInt8>) -> Header? {
        var rest = line
        guard consume(versionPrefix, from: &rest),
              let version = consumeDecimal(from: &rest),
              consume(crcPrefix, from: &rest),
              let crc = consumeHex32(from: &rest),
              consume(lengthPrefix, from: &rest),
              let length = consumeDecimal(from: &rest),
              consume(statePrefix, from: &rest),
              rest.isEmpty
        else { return nil }
        return Header(version: version, crc32: crc, length: length)
    }

    private static func consume(_ literal: [UInt8], from rest: inout ArraySlice<UInt8>) -> Bool {
        guard rest.starts(with: literal) else { return false }
        rest = rest.dropFirst(literal.count)
        return true
    }

    /// A canonical non-negative decimal: "0" or a non-zero digit followed by at most 17 digits.
    private static func consumeDecimal(from rest: inout ArraySlice<UInt8>) -> Int? {
        let digits = rest.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard !digits.isEmpty, digits.count <= 18,
              digits.count == 1 || digits.first != UInt8(ascii: "0")
        else { return nil }
        rest = rest.dropFirst(digits.count)
        return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    private static func consumeHex32(from rest: inout ArraySlice<UInt8>) -> UInt32? {
        let digits = rest.prefix(8)
        guard digits.count == 8 else { return nil }
        var value: UInt32 = 0
        for byte in digits {
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            default: return nil
            }
            value = value << 4 | UInt32(nibble)
        }
        rest = rest.dropFirst(8)
        return value
    }
}

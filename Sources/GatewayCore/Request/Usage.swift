/// Token counts the provider reported (`UsageInfo`).
public struct Usage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }

    /// Top-level `usage` of a non-streamed JSON response body; nil when absent or malformed.
    public static func inResponse(_ bytes: [UInt8]) -> Usage? {
        (try? scan(bytes))?.usage
    }

    /// Validates `bytes` as one JSON object and reads its top-level `usage`:
    /// `{"prompt_tokens":P,"completion_tokens":C,...}` with non-negative integers
    /// (`completion_tokens` absent counts 0, as for embeddings). `usage` absent, null or
    /// malformed, or a key given twice (which count would the provider bill?), gives nil:
    /// the caller then keeps what it reserved.
    static func scan(_ bytes: [UInt8]) throws(JSONScanner.Failure) -> (object: JSONScanner.ObjectMembers, usage: Usage?) {
        let object = try JSONScanner.topLevelObject(bytes, keys: ["usage"])
        guard object.members.count == 1, let range = object.members.first?.value,
              bytes[range.lowerBound] == UInt8(ascii: "{")
        else { return (object, nil) }
        var scanner = JSONScanner(bytes, at: range.lowerBound)
        guard let usage = try? scanner.scanObject(keys: ["prompt_tokens", "completion_tokens"]) else { return (object, nil) }
        func count(_ key: String) -> Int?? {
            let found = usage.members.filter { $0.key == key }
            guard let member = found.first else { return .some(nil) }
            guard found.count == 1, let value = JSONScanner.nonNegativeInteger(bytes[member.value]) else { return nil }
            return value
        }
        guard let prompt = count("prompt_tokens"), let prompt, let completion = count("completion_tokens") else {
            return (object, nil)
        }
        return (object, Usage(promptTokens: prompt, completionTokens: completion ?? 0))
    }
}

/// Reads a server-sent-event stream as it passes through (bytes are forwarded
/// unchanged by the caller) and remembers the last `usage` a `data:` event carried.
/// Events may be split across chunks anywhere, lines end in LF, CRLF or CR.
///
/// The WHATWG event-stream rules as Mistral uses them: `data:` lines (one space after
/// the colon dropped) are joined with "\n" into the event's data, a blank line ends the
/// event, lines starting with ":" are comments, other fields are ignored, a leading BOM
/// is dropped, and an event not ended by a blank line when the stream stops is dropped.
/// An event whose data is not a JSON object is ignored: the stream goes on, usage comes
/// from a later event or not at all (then the caller keeps what it reserved).
public struct StreamUsageScanner: Sendable {
    public private(set) var usage: Usage?
    /// `data: [DONE]` was seen.
    public private(set) var finished = false
    /// How many `data:` events with a JSON payload passed.
    public private(set) var events = 0

    /// An event's data above this is not a chat chunk; it is skipped rather than held.
    public static let maxEventBytes = 1 << 20

    private var line: [UInt8] = []
    private var data: [UInt8] = []
    /// The event has a `data:` field (even an empty one), so a blank line dispatches it.
    private var hasData = false
    /// The line or the event's data outgrew `maxEventBytes`: the event is skipped.
    private var overflowed = false
    /// The last byte was CR: an LF right after it ends no second line.
    private var afterCR = false
    /// Bytes of a leading BOM seen so far, until the first byte that is not one.
    private var bomMatched = 0
    private var started = false

    private static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]

    public init() {}

    public mutating func consume(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            if !started {
                if byte == Self.bom[bomMatched] {
                    bomMatched += 1
                    if bomMatched == Self.bom.count { started = true }
                    continue
                }
                started = true
                // A partial BOM was ordinary bytes after all.
                for earlier in Self.bom.prefix(bomMatched) { take(earlier) }
            }
            take(byte)
        }
    }

    private mutating func take(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\n"):
            if afterCR {
                afterCR = false
                return
            }
            endLine()
        case UInt8(ascii: "\r"):
            endLine()
            afterCR = true
        default:
            afterCR = false
            if line.count < Self.maxEventBytes {
                line.append(byte)
            } else {
                overflowed = true
            }
        }
    }

    private mutating func endLine() {
        afterCR = false
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty { return dispatch() }
        if line.first == UInt8(ascii: ":") { return }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        guard line[..<colon].elementsEqual("data".utf8) else { return }
        var value = line[min(colon + 1, line.endIndex)...]
        if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        if hasData { data.append(UInt8(ascii: "\n")) }
        hasData = true
        if data.count + value.count <= Self.maxEventBytes {
            data.append(contentsOf: value)
        } else {
            overflowed = true
        }
    }

    private mutating func dispatch() {
        defer {
            data.removeAll(keepingCapacity: true)
            hasData = false
            overflowed = false
        }
        guard hasData, !overflowed else { return }
        if data.elementsEqual("[DONE]".utf8) {
            finished = true
            return
        }
        guard let scanned = try? Usage.scan(data) else { return }
        events += 1
        if let found = scanned.usage { usage = found }
    }
}

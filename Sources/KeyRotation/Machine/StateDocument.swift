import Foundation

/// The state file's content: every managed key's record. Versioned; the state
/// file adapter stores the version beside the body and refuses versions newer
/// than `schemaVersion`.
public struct StateDocument: Codable, Sendable, Equatable {
    public static let schemaVersion = 1

    public var keys: [String: KeyRecord]
    /// Findings the scheduled audit has already reported.
    public var audit: AuditMemory?
    /// Budget alerts raised this month.
    public var budget: BudgetMemory?

    public init(keys: [String: KeyRecord] = [:], audit: AuditMemory? = nil, budget: BudgetMemory? = nil) {
        self.keys = keys
        self.audit = audit
        self.budget = budget
    }

    /// Stable JSON (sorted keys, ISO 8601 times with milliseconds in UTC).
    public func encoded() throws -> [UInt8] {
        Array(try Timestamp.stableJSONEncoder().encode(self))
    }

    public static func decode(_ bytes: [UInt8], version: Int) throws -> StateDocument {
        guard version == schemaVersion else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "unsupported state version \(version)"))
        }
        return try Timestamp.jsonDecoder().decode(StateDocument.self, from: Data(bytes))
    }
}

/// ISO 8601 / RFC 3339 timestamps, with or without fractional seconds and zone
/// (a missing zone is UTC), as providers write them. Written in UTC with exactly
/// three fractional digits, rounded to the nearest millisecond.
public enum Timestamp {
    /// The one JSON style keyrotd writes (state file, `--json`): sorted keys,
    /// unescaped slashes, times as `format` writes them.
    public static func stableJSONEncoder() -> JSONEncoder {
        jsonEncoder(formatting: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    }

    /// `stableJSONEncoder` without the pretty printing: one line, for the control
    /// socket, where a message ends at the first newline.
    public static func compactJSONEncoder() -> JSONEncoder {
        jsonEncoder(formatting: [.sortedKeys, .withoutEscapingSlashes])
    }

    /// Reads what the encoders write, and times in any form `parse` accepts.
    public static func jsonDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = parse(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad timestamp \"\(text)\""))
            }
            return date
        }
        return decoder
    }

    private static func jsonEncoder(formatting: JSONEncoder.OutputFormatting) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = formatting
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(format(date))
        }
        return encoder
    }

    public static func format(_ date: Date) -> String {
        let milliseconds = date.millisecondsSince1970
        let seconds = milliseconds.floorDivided(by: 1000)
        let fraction = milliseconds - seconds * 1000
        let whole = Date(timeIntervalSince1970: TimeInterval(seconds))
            .formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false))
        let digits = String(fraction)
        return whole.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    public static func parse(_ text: String) -> Date? {
        guard let t = text.firstIndex(of: "T") else { return nil }
        var main = Substring(text)
        var milliseconds: Int64 = 0
        if let dot = text[t...].firstIndex(of: ".") {
            let digits = text[text.index(after: dot)...].prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let value = Double("0." + digits) else { return nil }
            milliseconds = Int64((value * 1000).rounded())
            main = text[..<dot] + text[text.index(dot, offsetBy: digits.count + 1)...]
        }
        let withZone = hasZone(main) ? String(main) : main + "Z"
        guard let whole = try? Date.ISO8601FormatStyle().parse(withZone) else { return nil }
        return Date(millisecondsSince1970: whole.millisecondsSince1970 + milliseconds)
    }

    private static func hasZone(_ text: Substring) -> Bool {
        guard let t = text.firstIndex(of: "T") else { return true }
        let time = text[t...]
        return time.hasSuffix("Z") || time.hasSuffix("z") || time.contains("+") || time.dropFirst().contains("-")
    }
}

private extension Int64 {
    func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor < 0) ? quotient - 1 : quotient
    }
}

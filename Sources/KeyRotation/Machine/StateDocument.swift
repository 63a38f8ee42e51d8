import Foundation

/// The state file's content: every managed key's record. Versioned; the state
/// file adapter stores the version beside the body and refuses versions newer
/// than `schemaVersion`.
public struct StateDocument: Codable, Sendable, Equatable {
    public static let schemaVersion = 1

    public var keys: [String: KeyRecord]

    public init(keys: [String: KeyRecord] = [:]) {
        self.keys = keys
    }

    /// Stable JSON (sorted keys, ISO 8601 times with milliseconds in UTC).
    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamp.format(date))
        }
        return Array(try encoder.encode(self))
    }

    public static func decode(_ bytes: [UInt8], version: Int) throws -> StateDocument {
        guard version == schemaVersion else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "unsupported state version \(version)"))
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = Timestamp.parse(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad timestamp \"\(text)\""))
            }
            return date
        }
        return try decoder.decode(StateDocument.self, from: Data(bytes))
    }
}

/// ISO 8601 / RFC 3339 timestamps, with or without fractional seconds and zone
/// (a missing zone is UTC), as providers write them.
public enum Timestamp {
    public static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    public static func parse(_ text: String) -> Date? {
        let withZone = hasZone(text) ? text : text + "Z"
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(withZone) { return date }
        if let date = try? Date.ISO8601FormatStyle().parse(withZone) { return date }
        return nil
    }

    private static func hasZone(_ text: String) -> Bool {
        guard let t = text.firstIndex(of: "T") else { return true }
        let time = text[t...]
        return time.hasSuffix("Z") || time.hasSuffix("z") || time.contains("+") || time.dropFirst().contains("-")
    }
}

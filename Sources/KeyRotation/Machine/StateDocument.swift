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
    /// The deployment's name (`[daemon] instance`, or drawn at its first start),
    /// part of every provider key name it creates. nil in state files written
    /// before instances: the daemon then draws one (or takes the configured one)
    /// and writes it. An optional member, so those files load as they are.
    public var instance: String?

    public init(
        keys: [String: KeyRecord] = [:], audit: AuditMemory? = nil, budget: BudgetMemory? = nil, instance: String? = nil
    ) {
        self.keys = keys
        self.audit = audit
        self.budget = budget
        self.instance = instance
    }

    /// The state file's body: compact JSON with sorted keys and ISO 8601 times with
    /// milliseconds in UTC, as `StateBodyWriter` writes it (which the daemon uses, to
    /// encode only what changed). Compact because a persist copies every byte, and
    /// `jq` reads it either way.
    public func encoded() throws -> [UInt8] {
        Array(try Timestamp.compactJSONEncoder().encode(self))
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
        return formatCanonical(milliseconds) ?? formatWithStyle(milliseconds)
    }

    static func formatWithStyle(_ milliseconds: Int64) -> String {
        let seconds = milliseconds.floorDivided(by: 1000)
        let fraction = milliseconds - seconds * 1000
        let whole = Date(timeIntervalSince1970: TimeInterval(seconds))
            .formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false))
        let digits = String(fraction)
        return whole.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    public static func parse(_ text: String) -> Date? {
        if let milliseconds = parseCanonical(text) { return Date(millisecondsSince1970: milliseconds) }
        return parseWithStyle(text)
    }

    static func parseWithStyle(_ text: String) -> Date? {
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

    // MARK: The canonical form, by hand
    //
    // keyrotd writes every time as `YYYY-MM-DDTHH:MM:SS.mmmZ`, and a state file of 1,000
    // keys holds thousands of them. `Date.ISO8601FormatStyle` takes a few microseconds for
    // each (a third of start-up's decode), so that one form is written and read here, with
    // the proleptic Gregorian calendar's day count (Howard Hinnant's `days_from_civil` and
    // `civil_from_days`); anything else still goes through the format style. Tests check
    // both ways against it.

    /// Years 1970 through 9999: the ones written as four digits without a sign.
    private static let canonicalRange: ClosedRange<Int64> = 0...253_402_300_799_999

    static func formatCanonical(_ milliseconds: Int64) -> String? {
        guard canonicalRange.contains(milliseconds) else { return nil }
        let days = milliseconds / 86_400_000
        let ofDay = milliseconds % 86_400_000
        let (year, month, day) = civil(fromDays: days)
        var bytes = [UInt8](repeating: 0, count: 24)
        func put(_ value: Int64, at offset: Int, digits: Int) {
            var rest = value
            for index in stride(from: offset + digits - 1, through: offset, by: -1) {
                bytes[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
        }
        put(year, at: 0, digits: 4)
        put(month, at: 5, digits: 2)
        put(day, at: 8, digits: 2)
        put(ofDay / 3_600_000, at: 11, digits: 2)
        put(ofDay / 60_000 % 60, at: 14, digits: 2)
        put(ofDay / 1000 % 60, at: 17, digits: 2)
        put(ofDay % 1000, at: 20, digits: 3)
        for (offset, separator) in [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (23, "Z")] as [(Int, Unicode.Scalar)] {
            bytes[offset] = UInt8(ascii: separator)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func parseCanonical(_ text: String) -> Int64? {
        var text = text
        return text.withUTF8 { bytes -> Int64? in
            guard bytes.count == 24 else { return nil }
            for (offset, separator) in [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (23, "Z")] as [(Int, Unicode.Scalar)] {
                guard bytes[offset] == UInt8(ascii: separator) else { return nil }
            }
            func number(_ offset: Int, _ digits: Int) -> Int64? {
                var value: Int64 = 0
                for index in offset..<offset + digits {
                    let digit = bytes[index] &- UInt8(ascii: "0")
                    guard digit < 10 else { return nil }
                    value = value * 10 + Int64(digit)
                }
                return value
            }
            guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
                  let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
                  let millisecond = number(20, 3),
                  year >= 1970, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
                  hour < 24, minute < 60, second < 60
            else { return nil }
            let days = self.days(fromCivil: year, month, day)
            return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millisecond
        }
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a date on or after it.
    private static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = y / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date of a day count on or after 1970-01-01.
    private static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = z / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
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

import Foundation

/// A non-negative span of time, millisecond resolution.
///
/// A span is never negative and never traps: construction and arithmetic clamp
/// at zero and saturate at `Int64.max` milliseconds (about 292 million years).
///
/// The text form is the systemd time-span syntax of systemd.time(7), see
/// ``init(parsing:)`` and ``description``.
public struct TimeSpan: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The length in milliseconds. Always `>= 0`: a negative assignment stores zero.
    public var milliseconds: Int64 {
        didSet { if milliseconds < 0 { milliseconds = 0 } }
    }

    /// A span of `milliseconds`; a negative value gives ``zero``.
    public init(milliseconds: Int64) {
        self.milliseconds = max(0, milliseconds)
    }

    public static func milliseconds(_ v: Int64) -> TimeSpan { TimeSpan(milliseconds: v) }
    public static func seconds(_ v: Int64) -> TimeSpan { scaled(v, by: Unit.second.milliseconds) }
    public static func minutes(_ v: Int64) -> TimeSpan { scaled(v, by: Unit.minute.milliseconds) }
    public static func hours(_ v: Int64) -> TimeSpan { scaled(v, by: Unit.hour.milliseconds) }
    public static func days(_ v: Int64) -> TimeSpan { scaled(v, by: Unit.day.milliseconds) }

    public static let zero = TimeSpan(milliseconds: 0)

    /// The span in seconds.
    public var timeInterval: TimeInterval { Double(milliseconds) / 1000 }

    /// Parses "90d", "24h", "1h 30min", "1h30min", "2min", "45s", "1w", "1.5h", "250ms", a bare number = seconds.
    ///
    /// The text is a sequence of components, each a non-negative decimal number
    /// (`12`, `1.5`, `.5`) optionally followed by a unit; a number without a unit
    /// counts seconds. Whitespace around numbers and units is optional and the
    /// components are added up. Units, case-sensitive as in systemd.time(7):
    ///
    /// - `usec`, `us`, `µs`: microseconds
    /// - `msec`, `ms`: milliseconds
    /// - `seconds`, `second`, `sec`, `s`
    /// - `minutes`, `minute`, `min`, `m`
    /// - `hours`, `hour`, `hr`, `h`
    /// - `days`, `day`, `d`
    /// - `weeks`, `week`, `w`
    /// - `months`, `month`, `M`: 30.44 days
    /// - `years`, `year`, `y`: 365.25 days
    ///
    /// The exact sum is rounded down to whole milliseconds. Throws for empty text,
    /// a negative number, a malformed number, a unit without a number, an unknown
    /// unit, any other character, a non-zero sum below one millisecond, and a sum
    /// above `Int64.max` milliseconds.
    public init(parsing text: String) throws(TimeSpanError) {
        var parser = TimeSpanParser(text)
        self.init(milliseconds: try parser.parse())
    }

    /// Canonical systemd-style text, e.g. "90d", "1h 30min", "45s", "250ms", "0". Round-trips through init(parsing:).
    ///
    /// The form uses only the units `d`, `h`, `min`, `s` and `ms`, largest first,
    /// separated by single spaces, omitting zero components; the zero span is "0".
    public var description: String {
        guard milliseconds > 0 else { return "0" }
        var rest = milliseconds
        var parts: [String] = []
        for unit in Self.descriptionUnits {
            let count = rest / unit.milliseconds
            rest %= unit.milliseconds
            if count > 0 { parts.append("\(count)\(unit.symbol)") }
        }
        return parts.joined(separator: " ")
    }

    /// Decodes the text form; text that ``init(parsing:)`` rejects is a `DecodingError.dataCorrupted`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do throws(TimeSpanError) {
            self = try TimeSpan(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Encodes ``description``.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public static func < (lhs: TimeSpan, rhs: TimeSpan) -> Bool {
        lhs.milliseconds < rhs.milliseconds
    }

    /// The sum, saturating at `Int64.max` milliseconds.
    public static func + (lhs: TimeSpan, rhs: TimeSpan) -> TimeSpan {
        let (sum, overflow) = lhs.milliseconds.addingReportingOverflow(rhs.milliseconds)
        return TimeSpan(milliseconds: overflow ? .max : sum)
    }

    /// The difference, ``zero`` when `rhs` is longer than `lhs`.
    public static func - (lhs: TimeSpan, rhs: TimeSpan) -> TimeSpan {
        TimeSpan(milliseconds: lhs.milliseconds - rhs.milliseconds)
    }

    /// The span `factor` times as long, saturating at `Int64.max` milliseconds; ``zero`` for a negative factor.
    public static func * (lhs: TimeSpan, factor: Int64) -> TimeSpan {
        scaled(lhs.milliseconds, by: factor)
    }

    /// The span `factor` times as long, saturating at `Int64.max` milliseconds; ``zero`` for a negative factor.
    public static func * (factor: Int64, rhs: TimeSpan) -> TimeSpan {
        scaled(rhs.milliseconds, by: factor)
    }

    /// The span divided by `divisor`, rounded down to whole milliseconds; ``zero`` for a negative divisor.
    ///
    /// - Precondition: `divisor != 0`.
    public static func / (lhs: TimeSpan, divisor: Int64) -> TimeSpan {
        precondition(divisor != 0, "TimeSpan divided by zero")
        return TimeSpan(milliseconds: lhs.milliseconds / divisor)
    }

    /// The span scaled by `fraction`, rounded to the nearest millisecond (halves away from zero).
    ///
    /// A negative or NaN `fraction` gives ``zero``; a result beyond `Int64.max`
    /// milliseconds (including an infinite `fraction`) saturates.
    public func multiplied(by fraction: Double) -> TimeSpan {
        TimeSpan(saturating: Double(milliseconds) * fraction)
    }

    /// Rounds `milliseconds` to the nearest integer, clamping to `0...Int64.max`; NaN gives zero.
    init(saturating milliseconds: Double) {
        let rounded = milliseconds.rounded(.toNearestOrAwayFromZero)
        if !(rounded > 0) {
            self = .zero
        } else if rounded >= 0x1p63 {
            self.init(milliseconds: .max)
        } else {
            self.init(milliseconds: Int64(rounded))
        }
    }

    private static func scaled(_ value: Int64, by factor: Int64) -> TimeSpan {
        let (product, overflow) = value.multipliedReportingOverflow(by: factor)
        guard overflow else { return TimeSpan(milliseconds: product) }
        return (value < 0) == (factor < 0) ? TimeSpan(milliseconds: .max) : .zero
    }

    private static let descriptionUnits: [Unit] = [.day, .hour, .minute, .second, .millisecond]
}

/// Why a text is not a valid ``TimeSpan``; the message names the problem and quotes the whole input.
public struct TimeSpanError: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
}

extension Date {
    /// The instant rounded to whole milliseconds since 1970. Every instant the
    /// engine computes and persists lies on this grid, so a state file round trip
    /// (RFC 3339 with milliseconds) gives back exactly the same `Date`.
    public var millisecondsSince1970: Int64 {
        Int64((timeIntervalSince1970 * 1000).rounded())
    }

    public init(millisecondsSince1970 ms: Int64) {
        self.init(timeIntervalSince1970: TimeInterval(ms) / 1000)
    }

    /// `d` moved forward by `s`, on the millisecond grid (see `millisecondsSince1970`).
    public static func + (d: Date, s: TimeSpan) -> Date {
        let (sum, overflow) = d.millisecondsSince1970.addingReportingOverflow(s.milliseconds)
        return overflow ? .distantFuture : Date(millisecondsSince1970: min(sum, Date.distantFuture.millisecondsSince1970))
    }

    /// `d` moved backward by `s`, on the millisecond grid.
    public static func - (d: Date, s: TimeSpan) -> Date {
        let (difference, overflow) = d.millisecondsSince1970.subtractingReportingOverflow(s.milliseconds)
        return overflow ? .distantPast : Date(millisecondsSince1970: max(difference, Date.distantPast.millisecondsSince1970))
    }

    /// The span from `earlier` to self, zero if negative.
    ///
    /// Rounded to the nearest millisecond, so that `(d + s).span(since: d) == s`
    /// despite the floating-point representation of `Date`.
    public func span(since earlier: Date) -> TimeSpan {
        TimeSpan(saturating: timeIntervalSince(earlier) * 1000)
    }
}

/// A unit of the time-span syntax with its length in microseconds.
private struct Unit {
    var symbol: String
    var microseconds: Int64

    var milliseconds: Int64 { microseconds / 1000 }

    static let microsecond = Unit(symbol: "us", microseconds: 1)
    static let millisecond = Unit(symbol: "ms", microseconds: 1_000)
    static let second = Unit(symbol: "s", microseconds: 1_000_000)
    static let minute = Unit(symbol: "min", microseconds: 60 * second.microseconds)
    static let hour = Unit(symbol: "h", microseconds: 60 * minute.microseconds)
    static let day = Unit(symbol: "d", microseconds: 24 * hour.microseconds)
    static let week = Unit(symbol: "w", microseconds: 7 * day.microseconds)
    static let month = Unit(symbol: "M", microseconds: 2_630_016 * second.microseconds)
    static let year = Unit(symbol: "y", microseconds: 31_557_600 * second.microseconds)

    static let byName: [String: Unit] = {
        let names: [(Unit, [String])] = [
            (.microsecond, ["usec", "us", "\u{00B5}s", "\u{03BC}s"]),
            (.millisecond, ["msec", "ms"]),
            (.second, ["seconds", "second", "sec", "s"]),
            (.minute, ["minutes", "minute", "min", "m"]),
            (.hour, ["hours", "hour", "hr", "h"]),
            (.day, ["days", "day", "d"]),
            (.week, ["weeks", "week", "w"]),
            (.month, ["months", "month", "M"]),
            (.year, ["years", "year", "y"]),
        ]
        var table: [String: Unit] = [:]
        for (unit, spellings) in names {
            for spelling in spellings { table[spelling] = unit }
        }
        return table
    }()
}

/// Parses the time-span syntax into milliseconds, summing exactly in microseconds.
private struct TimeSpanParser {
    private let text: String
    private let chars: [Character]
    private var index = 0

    /// Fraction digits beyond this many cannot change the microsecond sum and are ignored.
    private static let maximumFractionDigits = 15
    private static let maximumMicroseconds = Int128(Int64.max) * 1000 + 999

    init(_ text: String) {
        self.text = text
        self.chars = Array(text)
    }

    mutating func parse() throws(TimeSpanError) -> Int64 {
        var total: Int128 = 0
        var components = 0
        while true {
            skipWhitespace()
            guard let c = current else { break }
            if c == "-" { throw error("negative numbers are not allowed") }
            if c.isLetter { throw error("number missing before unit \"\(readUnit())\"") }
            guard Self.isDigit(c) || c == "." else { throw unexpected(c) }
            total += try readComponent()
            components += 1
            if total > Self.maximumMicroseconds { throw error("time span too large") }
        }
        guard components > 0 else { throw TimeSpanError(description: "empty time span \"\(text)\"") }
        if total > 0 && total < 1000 { throw error("non-zero time span is below the 1ms resolution") }
        return Int64(total / 1000)
    }

    private var current: Character? { index < chars.count ? chars[index] : nil }

    /// Reads a number, optional whitespace and an optional unit; returns microseconds.
    private mutating func readComponent() throws(TimeSpanError) -> Int128 {
        let start = index
        let whole = readDigits()
        var fraction = ""
        if current == "." {
            index += 1
            fraction = readDigits()
            if fraction.isEmpty { throw invalidNumber(from: start) }
        }
        if (whole.isEmpty && fraction.isEmpty) || current == "." { throw invalidNumber(from: start) }
        if let c = current, !c.isLetter, !c.isWhitespace {
            throw c == "-" ? error("negative numbers are not allowed") : unexpected(c)
        }
        skipWhitespace()
        var unit = Unit.second
        if current?.isLetter == true {
            let name = readUnit()
            guard let named = Unit.byName[name] else { throw error("unknown unit \"\(name)\"") }
            unit = named
            if let c = current, !c.isWhitespace, !Self.isDigit(c), c != "." { throw unexpected(c) }
        }
        return try microseconds(whole: whole, fraction: fraction, unit: unit)
    }

    private func microseconds(whole: String, fraction: String, unit: Unit) throws(TimeSpanError) -> Int128 {
        let factor = Int128(unit.microseconds)
        var wholeValue: Int128 = 0
        for digit in whole.utf8 {
            let (shifted, o1) = wholeValue.multipliedReportingOverflow(by: 10)
            let (next, o2) = shifted.addingReportingOverflow(Int128(digit - UInt8(ascii: "0")))
            if o1 || o2 || next > Self.maximumMicroseconds { throw error("time span too large") }
            wholeValue = next
        }
        let (wholeMicros, overflow) = wholeValue.multipliedReportingOverflow(by: factor)
        if overflow || wholeMicros > Self.maximumMicroseconds { throw error("time span too large") }
        var fractionValue: Int128 = 0
        var scale: Int128 = 1
        for digit in fraction.utf8.prefix(Self.maximumFractionDigits) {
            fractionValue = fractionValue * 10 + Int128(digit - UInt8(ascii: "0"))
            scale *= 10
        }
        return wholeMicros + fractionValue * factor / scale
    }

    private mutating func readDigits() -> String {
        var digits = ""
        while let c = current, Self.isDigit(c) {
            digits.append(c)
            index += 1
        }
        return digits
    }

    private mutating func readUnit() -> String {
        var name = ""
        while let c = current, c.isLetter {
            name.append(c)
            index += 1
        }
        return name
    }

    private mutating func skipWhitespace() {
        while let c = current, c.isWhitespace { index += 1 }
    }

    private static func isDigit(_ c: Character) -> Bool {
        c.isASCII && c.isWholeNumber
    }

    private func invalidNumber(from start: Int) -> TimeSpanError {
        var end = index
        while end < chars.count, Self.isDigit(chars[end]) || chars[end] == "." { end += 1 }
        return error("invalid number \"\(String(chars[start..<end]))\"")
    }

    private func unexpected(_ c: Character) -> TimeSpanError {
        error("unexpected character \"\(c)\"")
    }

    private func error(_ problem: String) -> TimeSpanError {
        TimeSpanError(description: "\(problem) in \"\(text)\"")
    }
}

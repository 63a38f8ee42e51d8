import Foundation

/// When rotations may start: a weekly recurring local-time window, written in a
/// subset of the systemd calendar syntax.
///
/// The window opens once on every listed day: at the start time, and stays open
/// until the end time on the same day, or on the next day when the end is not
/// after the start ("overnight"). Without days it opens every day; without a time
/// range it covers the whole day (from local midnight to the next local midnight).
///
/// Local times are read in the time zone passed to ``contains(_:in:)`` and
/// ``nextOpening(atOrAfter:in:)``, with the proleptic Gregorian calendar. Around
/// daylight-saving transitions the window on a day runs from the *first* instant
/// whose local time is the start time to the *last* instant whose local time is
/// the end time:
///
/// - a start or end time skipped by a spring-forward gap is taken as the first
///   instant after the gap (a window entirely inside the gap does not open that day);
/// - a start time repeated by a fall-back uses its first occurrence, a repeated
///   end time its second occurrence, so every instant whose local time lies in the
///   range is inside the window.
public struct RotationWindow: Hashable, Sendable, CustomStringConvertible {
    /// Listed days, bit `i` for weekday `i` counted from Monday = 0; never empty.
    private let days: UInt8
    /// Start, seconds after local midnight, `0..<86_400`.
    private let start: Int64
    /// End, seconds after local midnight, `1...86_400`, never equal to `start`;
    /// before `start` it is on the following day.
    private let end: Int64

    private static let allDays: UInt8 = 0x7F
    private static let secondsPerDay: Int64 = 86_400
    private static let dayNames = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

    /// Parses `[DAYS] [HH:MM[:SS]..HH:MM[:SS]]`, at least one of the two parts,
    /// separated by whitespace.
    ///
    /// - DAYS: a comma-separated list of day names and inclusive ranges `A..B`,
    ///   e.g. `Mon..Fri`, `Sat,Sun`, `Mon,Wed..Fri`; a range may wrap past Sunday
    ///   (`Fri..Mon`). Names are the English three-letter or full names, in any case.
    ///   Omitted: every day.
    /// - Time range: hours `0`-`23` (one or two digits), minutes and seconds
    ///   `00`-`59`; the end may be `24:00`. An end before the start closes the next
    ///   day; an end equal to the start is an error. `00:00..24:00` is the whole day,
    ///   the same as omitting the range.
    ///
    /// Whitespace around `,` and `..` is allowed.
    public init(parsing text: String) throws(RotationWindowError) {
        let parsed = try RotationWindowParser(text: text).parse()
        days = parsed.days
        start = parsed.start
        end = parsed.end == 0 ? Self.secondsPerDay : parsed.end
    }

    /// Canonical text, e.g. "Mon..Fri 09:00..17:00".
    ///
    /// Days are listed from Monday, runs of three or more consecutive days
    /// (also across Sunday) as ranges (`Mon..Fri`, `Fri..Mon`), others by name
    /// (`Sat,Sun`), and omitted when every day is listed and there is a time range.
    /// Times are `HH:MM`, with `:SS` only when non-zero; the whole day has no time
    /// range, and every day with the whole day is `Mon..Sun`. Equal windows have
    /// equal descriptions, and the description parses back to an equal window.
    public var description: String {
        let isWholeDay = start == 0 && end == Self.secondsPerDay
        var parts: [String] = []
        if days != Self.allDays || isWholeDay { parts.append(Self.describe(days: days)) }
        if !isWholeDay { parts.append("\(Self.describe(time: start))..\(Self.describe(time: end))") }
        return parts.joined(separator: " ")
    }

    /// Whether the window is open at `t`, local times read in `timeZone`; the
    /// start is inclusive, the end exclusive.
    public func contains(_ t: Date, in timeZone: TimeZone) -> Bool {
        let clock = LocalClock(timeZone: timeZone)
        let today = clock.localDay(of: t)
        for day in (today - 2)...(today + 1) {
            if let open = opening(on: day, clock: clock), open.contains(t) { return true }
        }
        return false
    }

    /// The earliest instant >= t at which the window is open (t itself if open at t).
    ///
    /// The result is less than a week after `t`, or two weeks when a DST gap
    /// swallows the window on the next listed day; the cost is a bounded number of
    /// time-zone offset look-ups, independent of `t`.
    public func nextOpening(atOrAfter t: Date, in timeZone: TimeZone) -> Date {
        let clock = LocalClock(timeZone: timeZone)
        let today = clock.localDay(of: t)
        var best: (start: Date, day: Int64)?
        // Windows open once a week or more often; a second week is only reached
        // when the listed day's window falls entirely into a DST gap.
        for day in (today - 2)...(today + 15) {
            if let found = best, day > max(found.day + 1, today + 1) { break }
            guard let open = opening(on: day, clock: clock) else { continue }
            if open.contains(t) { return t }
            if open.lowerBound > t, best.map({ open.lowerBound < $0.start }) ?? true {
                best = (open.lowerBound, day)
            }
        }
        return best?.start ?? t
    }

    /// The interval during which the window is open for local `day` (days since
    /// 1970-01-01), or nil when the day is not listed or the interval is empty.
    private func opening(on day: Int64, clock: LocalClock) -> Range<Date>? {
        guard days & (1 << LocalClock.weekday(ofDay: day)) != 0 else { return nil }
        let dayStart = day * Self.secondsPerDay
        let closingDay = end > start ? dayStart : dayStart + Self.secondsPerDay
        let open = clock.instant(atLocal: dayStart + start, latest: false)
        let close = clock.instant(atLocal: closingDay + end, latest: true)
        guard open < close else { return nil }
        return Date(timeIntervalSince1970: Double(open))..<Date(timeIntervalSince1970: Double(close))
    }

    private static func describe(days: UInt8) -> String {
        guard days != allDays else { return "\(dayNames[0])..\(dayNames[6])" }
        let isListed = { (i: Int) in days & (1 << ((i % 7 + 7) % 7)) != 0 }
        var items: [(sortKey: Int, text: String)] = []
        for first in 0..<7 where isListed(first) && !isListed(first - 1) {
            var length = 1
            while isListed(first + length) { length += 1 }
            if length >= 3 {
                items.append((first, "\(dayNames[first])..\(dayNames[(first + length - 1) % 7])"))
            } else {
                for i in first..<(first + length) { items.append((i % 7, dayNames[i % 7])) }
            }
        }
        return items.sorted { $0.sortKey < $1.sortKey }.map(\.text).joined(separator: ",")
    }

    private static func describe(time seconds: Int64) -> String {
        func twoDigits(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let text = "\(twoDigits(seconds / 3600)):\(twoDigits(seconds / 60 % 60))"
        return seconds % 60 == 0 ? text : "\(text):\(twoDigits(seconds % 60))"
    }
}

/// Why a text is not a valid ``RotationWindow``; the message names the bad part and quotes the whole input.
public struct RotationWindowError: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
}

/// Conversions between instants and local wall-clock time, in whole seconds since
/// 1970-01-01T00:00 (UTC for instants, local for wall-clock times).
private struct LocalClock {
    var timeZone: TimeZone

    /// The local day (days since 1970-01-01) on which `t` falls.
    func localDay(of t: Date) -> Int64 {
        let seconds = t.timeIntervalSince1970
        let instant = seconds.isFinite ? Int64(min(max(seconds.rounded(.down), -0x1p52), 0x1p52)) : 0
        return floorDivide(instant + offset(at: instant), 86_400)
    }

    /// The weekday of local `day`, Monday = 0 ... Sunday = 6.
    static func weekday(ofDay day: Int64) -> Int64 {
        // 1970-01-01 was a Thursday.
        ((day + 3) % 7 + 7) % 7
    }

    /// The instant at which the local clock reads `wall`: the first (or with
    /// `latest`, the last) occurrence of a repeated time, the first instant after
    /// the gap for a skipped time.
    ///
    /// Assumes at most one offset change within a day either side of `wall`.
    func instant(atLocal wall: Int64, latest: Bool) -> Int64 {
        let offsetBefore = offset(at: wall - 86_400)
        let offsetAfter = offset(at: wall + 86_400)
        if offsetBefore == offsetAfter, offset(at: wall - offsetBefore) == offsetBefore {
            return wall - offsetBefore
        }
        let candidates = [wall - offsetBefore, wall - offsetAfter].filter { $0 + offset(at: $0) == wall }
        if let chosen = latest ? candidates.max() : candidates.min() { return chosen }
        // In a gap the local clock jumps over `wall`: find the transition, the
        // first instant whose local time is past `wall`.
        var low = min(wall - offsetBefore, wall - offsetAfter)
        var high = max(wall - offsetBefore, wall - offsetAfter)
        guard high + offset(at: high) > wall else { return high }
        while low < high {
            let middle = low + (high - low) / 2
            if middle + offset(at: middle) > wall { high = middle } else { low = middle + 1 }
        }
        return high
    }

    private func offset(at instant: Int64) -> Int64 {
        Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant))))
    }

    private func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return a % b < 0 ? q - 1 : q
    }
}

/// Parses the text form of ``RotationWindow``; times are seconds after midnight.
private struct RotationWindowParser {
    let text: String

    func parse() throws(RotationWindowError) -> (days: UInt8, start: Int64, end: Int64) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw RotationWindowError(description: "empty rotation window \"\(text)\"") }
        guard let firstDigit = trimmed.firstIndex(where: { $0.isASCII && $0.isWholeNumber }) else {
            return (try parseDays(trimmed), 0, 86_400)
        }
        let daysPart = trimmed[..<firstDigit]
        let timePart = trimmed[firstDigit...]
        if let last = daysPart.last, !last.isWhitespace {
            throw error("expected whitespace between days and time range")
        }
        if timePart.contains(where: \.isLetter) {
            throw error("days must come before the time range, found \"\(timePart)\"")
        }
        let days = try daysPart.isEmpty ? 0x7F : parseDays(daysPart.trimmingCharacters(in: .whitespaces))
        let bounds = timePart.components(separatedBy: "..").map { $0.trimmingCharacters(in: .whitespaces) }
        guard bounds.count == 2 else {
            throw error("invalid time range \"\(timePart)\" (expected HH:MM..HH:MM)")
        }
        let start = try parseTime(bounds[0], isEnd: false)
        let end = try parseTime(bounds[1], isEnd: true)
        if start == end {
            throw error("time range \"\(timePart)\" is empty (start equals end)")
        }
        return (days, start, end)
    }

    private func parseDays(_ part: String) throws(RotationWindowError) -> UInt8 {
        var days: UInt8 = 0
        for item in part.components(separatedBy: ",") {
            let names = item.components(separatedBy: "..").map { $0.trimmingCharacters(in: .whitespaces) }
            let itemText = item.trimmingCharacters(in: .whitespaces)
            guard names.count <= 2 else { throw error("invalid day range \"\(itemText)\"") }
            if names.count == 1 && names[0].isEmpty { throw error("missing day name") }
            if names.contains(where: \.isEmpty) { throw error("incomplete day range \"\(itemText)\"") }
            let first = try weekday(names[0])
            let last = try names.count == 2 ? weekday(names[1]) : first
            var day = first
            while true {
                days |= 1 << day
                if day == last { break }
                day = (day + 1) % 7
            }
        }
        return days
    }

    private func weekday(_ name: String) throws(RotationWindowError) -> Int {
        let lowered = name.lowercased()
        let full = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        guard let index = full.firstIndex(where: { $0 == lowered || $0.prefix(3) == lowered }) else {
            throw error("unknown day \"\(name)\"")
        }
        return index
    }

    /// Parses `H:MM`, `HH:MM`, `H:MM:SS` or `HH:MM:SS`; `24:00[:00]` only when `isEnd`.
    private func parseTime(_ part: String, isEnd: Bool) throws(RotationWindowError) -> Int64 {
        let fields = part.split(separator: ":", omittingEmptySubsequences: false)
        let wellFormed = (2...3).contains(fields.count)
            && fields.allSatisfy { $0.allSatisfy { $0.isASCII && $0.isWholeNumber } }
            && (1...2).contains(fields[0].count)
            && fields.dropFirst().allSatisfy { $0.count == 2 }
        guard wellFormed, let hour = Int64(fields[0]), let minute = Int64(fields[1]) else {
            throw error("invalid time \"\(part)\" (expected HH:MM or HH:MM:SS)")
        }
        let second = fields.count == 3 ? Int64(fields[2]) ?? 0 : 0
        if hour == 24 && minute == 0 && second == 0 {
            guard isEnd else { throw error("start time \"\(part)\" out of range (24:00 is only allowed as the end)") }
            return 86_400
        }
        guard hour < 24 else { throw error("hour out of range in \"\(part)\" (0-23, or 24:00 as the end)") }
        guard minute < 60 else { throw error("minute out of range in \"\(part)\" (00-59)") }
        guard second < 60 else { throw error("second out of range in \"\(part)\" (00-59)") }
        return hour * 3600 + minute * 60 + second
    }

    private func error(_ problem: String) -> RotationWindowError {
        RotationWindowError(description: "\(problem) in \"\(text)\"")
    }
}

import Foundation
import KeyRotation
import Testing

private let berlin = TimeZone(identifier: "Europe/Berlin")!

/// The instant written as ISO 8601 with an explicit offset, e.g. "2026-03-29T03:00:00+02:00".
private func instant(_ text: String) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = formatter.date(from: text) { return date }
    formatter.formatOptions = [.withInternetDateTime]
    guard let date = formatter.date(from: text) else { fatalError("bad test instant \(text)") }
    return date
}

private func window(_ text: String) throws -> RotationWindow {
    try RotationWindow(parsing: text)
}

@Suite struct RotationWindowParsingTests {
    @Test(arguments: [
        ("Mon..Fri 09:00..17:00", "Mon..Fri 09:00..17:00"),
        ("mon..fri 9:00..17:00", "Mon..Fri 09:00..17:00"),
        ("Monday..FRIDAY 09:00:00..17:00:00", "Mon..Fri 09:00..17:00"),
        ("  Mon .. Fri\t09:00 .. 17:00 ", "Mon..Fri 09:00..17:00"),
        ("Sat,Sun", "Sat,Sun"),
        ("saturday, SUNDAY", "Sat,Sun"),
        ("Sun,Sat", "Sat,Sun"),
        ("Mon,Wed..Fri", "Mon,Wed..Fri"),
        ("Mon,Tue,Wed,Thu,Fri", "Mon..Fri"),
        ("Wed,Mon", "Mon,Wed"),
        ("Mon,Mon..Tue", "Mon,Tue"),
        ("Mon..Mon", "Mon"),
        ("Fri..Mon", "Fri..Mon"),
        ("Fri..Mon 22:00..06:00", "Fri..Mon 22:00..06:00"),
        ("Sat..Mon", "Sat..Mon"),
        ("Sun,Mon", "Mon,Sun"),
        ("Thu..Tue", "Thu..Tue"),
        ("Sat,Sun,Mon,Wed", "Wed,Sat..Mon"),
        ("Mon,Wed,Fri,Sun", "Mon,Wed,Fri,Sun"),
        ("Mon..Sun", "Mon..Sun"),
        ("Tue..Mon", "Mon..Sun"),
        ("Mon..Sun 09:00..17:00", "09:00..17:00"),
        ("09:00..17:00", "09:00..17:00"),
        ("22:00..06:00", "22:00..06:00"),
        ("00:00..24:00", "Mon..Sun"),
        ("00:00..24:00:00", "Mon..Sun"),
        ("Mon 00:00..24:00", "Mon"),
        ("Mon 10:00..00:00", "Mon 10:00..24:00"),
        ("Mon 10:00..24:00", "Mon 10:00..24:00"),
        ("09:00:30..17:00:05", "09:00:30..17:00:05"),
        ("9:05..9:06", "09:05..09:06"),
        ("23:59:59..00:00:01", "23:59:59..00:00:01"),
    ])
    func canonicalDescription(text: String, canonical: String) throws {
        let parsed = try window(text)
        #expect(parsed.description == canonical)
        #expect(try window(canonical) == parsed)
        #expect(try window(canonical).description == canonical)
    }

    @Test func equivalentWindowsAreEqual() throws {
        #expect(try window("Mon..Fri") == window("Mon,Tue,Wed,Thu,Fri"))
        #expect(try window("00:00..24:00") == window("Mon..Sun"))
        #expect(try window("Sat 00:00..24:00") == window("Saturday"))
        #expect(try window("Mon 10:00..00:00") == window("Mon 10:00..24:00"))
        #expect(try window("Mon 09:00..17:00") != window("Mon 09:00..17:01"))
        #expect(try window("Mon 09:00..17:00") != window("Tue 09:00..17:00"))
        #expect(try Set([window("Mon..Fri"), window("mon,tue,wed,thu,fri"), window("Sat")]).count == 2)
    }

    @Test(arguments: [
        ("", #"empty rotation window """#),
        ("  ", #"empty rotation window "  ""#),
        ("Fooday", #"unknown day "Fooday" in "Fooday""#),
        ("Mon..Fooday 09:00..17:00", #"unknown day "Fooday" in "Mon..Fooday 09:00..17:00""#),
        ("Mo", #"unknown day "Mo" in "Mo""#),
        ("Mon Fri", #"unknown day "Mon Fri" in "Mon Fri""#),
        ("-Mon", #"unknown day "-Mon" in "-Mon""#),
        ("Mon,,Fri", #"missing day name in "Mon,,Fri""#),
        ("Mon,Fri,", #"missing day name in "Mon,Fri,""#),
        ("Mon..", #"incomplete day range "Mon.." in "Mon..""#),
        ("..Fri 09:00..10:00", #"incomplete day range "..Fri" in "..Fri 09:00..10:00""#),
        ("Mon..Tue..Wed", #"invalid day range "Mon..Tue..Wed" in "Mon..Tue..Wed""#),
        ("Mon09:00..17:00", #"expected whitespace between days and time range in "Mon09:00..17:00""#),
        ("09:00..17:00 Mon", #"days must come before the time range, found "09:00..17:00 Mon" in "09:00..17:00 Mon""#),
        ("09:00-17:00", #"invalid time range "09:00-17:00" (expected HH:MM..HH:MM) in "09:00-17:00""#),
        ("09:00", #"invalid time range "09:00" (expected HH:MM..HH:MM) in "09:00""#),
        ("09:00..10:00 11:00..12:00", #"invalid time range "09:00..10:00 11:00..12:00" (expected HH:MM..HH:MM) in "09:00..10:00 11:00..12:00""#),
        ("9..17", #"invalid time "9" (expected HH:MM or HH:MM:SS) in "9..17""#),
        ("09:00..17", #"invalid time "17" (expected HH:MM or HH:MM:SS) in "09:00..17""#),
        ("9:5..10:00", #"invalid time "9:5" (expected HH:MM or HH:MM:SS) in "9:5..10:00""#),
        ("123:00..130:00", #"invalid time "123:00" (expected HH:MM or HH:MM:SS) in "123:00..130:00""#),
        ("09:00:00:00..10:00", #"invalid time "09:00:00:00" (expected HH:MM or HH:MM:SS) in "09:00:00:00..10:00""#),
        ("09:00..", #"invalid time "" (expected HH:MM or HH:MM:SS) in "09:00..""#),
        ("25:00..26:00", #"hour out of range in "25:00" (0-23, or 24:00 as the end) in "25:00..26:00""#),
        ("22:00..24:30", #"hour out of range in "24:30" (0-23, or 24:00 as the end) in "22:00..24:30""#),
        ("24:00..06:00", #"start time "24:00" out of range (24:00 is only allowed as the end) in "24:00..06:00""#),
        ("09:60..10:00", #"minute out of range in "09:60" (00-59) in "09:60..10:00""#),
        ("09:00:60..10:00", #"second out of range in "09:00:60" (00-59) in "09:00:60..10:00""#),
        ("09:00..09:00", #"time range "09:00..09:00" is empty (start equals end) in "09:00..09:00""#),
        ("00:00..00:00", #"time range "00:00..00:00" is empty (start equals end) in "00:00..00:00""#),
        ("Mon 17:00..17:00:00", #"time range "17:00..17:00:00" is empty (start equals end) in "Mon 17:00..17:00:00""#),
    ])
    func errors(text: String, message: String) {
        let error = #expect(throws: RotationWindowError.self) { try RotationWindow(parsing: text) }
        #expect(error?.description == message)
    }
}

/// One expectation: `window` at `at` in `zone` is open or not, and opens next at `next`.
struct WindowCase: Sendable, CustomTestStringConvertible {
    var window: String
    var zone: String
    var at: String
    var isOpen: Bool
    var next: String

    init(_ window: String, _ zone: String = "UTC", at: String, open isOpen: Bool, next: String? = nil) {
        self.window = window
        self.zone = zone
        self.at = at
        self.isOpen = isOpen
        self.next = next ?? at
    }

    var testDescription: String { "\(window) [\(zone)] at \(at)" }
}

@Suite struct RotationWindowEvaluationTests {
    // 2026-01-05 is a Monday.
    static let utcCases: [WindowCase] = [
        WindowCase("Mon..Fri 09:00..17:00", at: "2026-01-05T08:59:59.999Z", open: false, next: "2026-01-05T09:00:00Z"),
        WindowCase("Mon..Fri 09:00..17:00", at: "2026-01-05T08:00:00Z", open: false, next: "2026-01-05T09:00:00Z"),
        WindowCase("Mon..Fri 09:00..17:00", at: "2026-01-05T09:00:00Z", open: true),
        WindowCase("Mon..Fri 09:00..17:00", at: "2026-01-05T12:34:56.789Z", open: true),
        WindowCase("Mon..Fri 09:00..17:00", at: "2026-01-05T16:59:59.999Z", open: true),
        WindowCase("Mon..Fri 09:00..17:00", at: "2026-01-05T17:00:00Z", open: false, next: "2026-01-06T09:00:00Z"),
        WindowCase("Mon..Fri 09:00..17:00", at: "2026-01-09T12:00:00Z", open: true),
        WindowCase("Mon..Fri 09:00..17:00", at: "2026-01-09T17:00:00Z", open: false, next: "2026-01-12T09:00:00Z"),
        WindowCase("Mon..Fri 09:00..17:00", at: "2026-01-10T12:00:00Z", open: false, next: "2026-01-12T09:00:00Z"),
        WindowCase("Mon..Fri 09:00..17:00", at: "2026-01-11T23:59:59.999Z", open: false, next: "2026-01-12T09:00:00Z"),
        WindowCase("09:00:30..17:00:05", at: "2026-01-05T09:00:29Z", open: false, next: "2026-01-05T09:00:30Z"),
        WindowCase("09:00:30..17:00:05", at: "2026-01-05T17:00:04Z", open: true),
        WindowCase("09:00:30..17:00:05", at: "2026-01-05T17:00:05Z", open: false, next: "2026-01-06T09:00:30Z"),
        // Weekends, whole days.
        WindowCase("Sat,Sun", at: "2026-01-09T23:59:59.999Z", open: false, next: "2026-01-10T00:00:00Z"),
        WindowCase("Sat,Sun", at: "2026-01-07T12:00:00Z", open: false, next: "2026-01-10T00:00:00Z"),
        WindowCase("Sat,Sun", at: "2026-01-10T00:00:00Z", open: true),
        WindowCase("Sat,Sun", at: "2026-01-11T12:00:00Z", open: true),
        WindowCase("Sat,Sun", at: "2026-01-11T23:59:59.999Z", open: true),
        WindowCase("Sat,Sun", at: "2026-01-12T00:00:00Z", open: false, next: "2026-01-17T00:00:00Z"),
        WindowCase("Mon..Sun", at: "2026-01-07T12:00:00Z", open: true),
        WindowCase("Mon..Sun", at: "2026-01-11T23:59:59.999Z", open: true),
        WindowCase("Wed", at: "2026-01-08T00:00:00Z", open: false, next: "2026-01-14T00:00:00Z"),
        WindowCase("Wed 12:00..24:00", at: "2026-01-07T23:59:59.999Z", open: true),
        WindowCase("Wed 12:00..24:00", at: "2026-01-08T00:00:00Z", open: false, next: "2026-01-14T12:00:00Z"),
        // Overnight windows close on the following (possibly unlisted) day.
        WindowCase("Fri 22:00..06:00", at: "2026-01-09T21:59:59Z", open: false, next: "2026-01-09T22:00:00Z"),
        WindowCase("Fri 22:00..06:00", at: "2026-01-09T12:00:00Z", open: false, next: "2026-01-09T22:00:00Z"),
        WindowCase("Fri 22:00..06:00", at: "2026-01-09T22:00:00Z", open: true),
        WindowCase("Fri 22:00..06:00", at: "2026-01-10T00:00:00Z", open: true),
        WindowCase("Fri 22:00..06:00", at: "2026-01-10T05:59:59.999Z", open: true),
        WindowCase("Fri 22:00..06:00", at: "2026-01-10T06:00:00Z", open: false, next: "2026-01-16T22:00:00Z"),
        WindowCase("Fri 22:00..06:00", at: "2026-01-08T23:00:00Z", open: false, next: "2026-01-09T22:00:00Z"),
        WindowCase("Fri 22:00..06:00", at: "2026-01-10T23:00:00Z", open: false, next: "2026-01-16T22:00:00Z"),
        WindowCase("22:00..02:00", at: "2026-01-05T01:00:00Z", open: true),
        WindowCase("22:00..02:00", at: "2026-01-05T02:00:00Z", open: false, next: "2026-01-05T22:00:00Z"),
        WindowCase("22:00..02:00", at: "2026-01-05T23:59:59Z", open: true),
        WindowCase("23:59:59..00:00:01", at: "2026-01-06T00:00:00Z", open: true),
        WindowCase("23:59:59..00:00:01", at: "2026-01-06T00:00:01Z", open: false, next: "2026-01-06T23:59:59Z"),
        WindowCase("Sun 22:00..06:00", at: "2026-01-12T05:00:00Z", open: true),
        WindowCase("Sun 22:00..06:00", at: "2026-01-12T06:00:00Z", open: false, next: "2026-01-18T22:00:00Z"),
        // Day ranges wrapping past Sunday.
        WindowCase("Fri..Mon 09:00..17:00", at: "2026-01-09T10:00:00Z", open: true),
        WindowCase("Fri..Mon 09:00..17:00", at: "2026-01-10T10:00:00Z", open: true),
        WindowCase("Fri..Mon 09:00..17:00", at: "2026-01-11T10:00:00Z", open: true),
        WindowCase("Fri..Mon 09:00..17:00", at: "2026-01-12T10:00:00Z", open: true),
        WindowCase("Fri..Mon 09:00..17:00", at: "2026-01-12T17:00:00Z", open: false, next: "2026-01-16T09:00:00Z"),
        WindowCase("Fri..Mon 09:00..17:00", at: "2026-01-13T10:00:00Z", open: false, next: "2026-01-16T09:00:00Z"),
        WindowCase("Fri..Mon 09:00..17:00", at: "2026-01-15T10:00:00Z", open: false, next: "2026-01-16T09:00:00Z"),
        WindowCase("Fri..Mon 22:00..06:00", at: "2026-01-13T05:59:59Z", open: true),
        WindowCase("Fri..Mon 22:00..06:00", at: "2026-01-13T06:00:00Z", open: false, next: "2026-01-16T22:00:00Z"),
        WindowCase("Sat..Mon", at: "2026-01-12T23:59:59Z", open: true),
        WindowCase("Sat..Mon", at: "2026-01-13T00:00:00Z", open: false, next: "2026-01-17T00:00:00Z"),
    ]

    // Europe/Berlin: on 2026-03-29 (a Sunday) 02:00 CET jumps to 03:00 CEST.
    static let springForwardCases: [WindowCase] = [
        WindowCase("09:00..17:00", "Europe/Berlin", at: "2026-03-29T08:59:59+02:00", open: false, next: "2026-03-29T09:00:00+02:00"),
        WindowCase("09:00..17:00", "Europe/Berlin", at: "2026-03-28T17:00:00+01:00", open: false, next: "2026-03-29T09:00:00+02:00"),
        WindowCase("09:00..17:00", "Europe/Berlin", at: "2026-03-29T16:59:59+02:00", open: true),
        WindowCase("Mon..Fri 09:00..17:00", "Europe/Berlin", at: "2026-03-27T17:00:00+01:00", open: false, next: "2026-03-30T09:00:00+02:00"),
        // A start inside the gap opens at the first instant after it.
        WindowCase("Sun 02:30..04:00", "Europe/Berlin", at: "2026-03-29T01:59:59+01:00", open: false, next: "2026-03-29T03:00:00+02:00"),
        WindowCase("Sun 02:30..04:00", "Europe/Berlin", at: "2026-03-29T03:00:00+02:00", open: true),
        WindowCase("Sun 02:30..04:00", "Europe/Berlin", at: "2026-03-29T03:59:59+02:00", open: true),
        WindowCase("Sun 02:30..04:00", "Europe/Berlin", at: "2026-03-29T04:00:00+02:00", open: false, next: "2026-04-05T02:30:00+02:00"),
        WindowCase("Sun 02:30..04:00", "Europe/Berlin", at: "2026-03-22T02:30:00+01:00", open: true),
        // An end inside the gap closes at the first instant after it.
        WindowCase("01:00..02:30", "Europe/Berlin", at: "2026-03-29T01:00:00+01:00", open: true),
        WindowCase("01:00..02:30", "Europe/Berlin", at: "2026-03-29T01:59:59+01:00", open: true),
        WindowCase("01:00..02:30", "Europe/Berlin", at: "2026-03-29T03:00:00+02:00", open: false, next: "2026-03-30T01:00:00+02:00"),
        WindowCase("Sat 23:00..02:30", "Europe/Berlin", at: "2026-03-29T01:59:59+01:00", open: true),
        WindowCase("Sat 23:00..02:30", "Europe/Berlin", at: "2026-03-29T03:00:00+02:00", open: false, next: "2026-04-04T23:00:00+02:00"),
        // A window entirely inside the gap does not open that day.
        WindowCase("02:15..02:45", "Europe/Berlin", at: "2026-03-28T02:15:00+01:00", open: true),
        WindowCase("02:15..02:45", "Europe/Berlin", at: "2026-03-29T00:00:00+01:00", open: false, next: "2026-03-30T02:15:00+02:00"),
        WindowCase("02:15..02:45", "Europe/Berlin", at: "2026-03-29T03:00:00+02:00", open: false, next: "2026-03-30T02:15:00+02:00"),
        WindowCase("Sun 02:15..02:45", "Europe/Berlin", at: "2026-03-28T12:00:00+01:00", open: false, next: "2026-04-05T02:15:00+02:00"),
        // Whole days are 23 hours long.
        WindowCase("Sun", "Europe/Berlin", at: "2026-03-28T23:59:59+01:00", open: false, next: "2026-03-29T00:00:00+01:00"),
        WindowCase("Sun", "Europe/Berlin", at: "2026-03-29T00:00:00+01:00", open: true),
        WindowCase("Sun", "Europe/Berlin", at: "2026-03-29T23:59:59+02:00", open: true),
        WindowCase("Sun", "Europe/Berlin", at: "2026-03-30T00:00:00+02:00", open: false, next: "2026-04-05T00:00:00+02:00"),
        WindowCase("Fri 22:00..06:00", "Europe/Berlin", at: "2026-03-28T05:59:59+01:00", open: true),
        WindowCase("Fri 22:00..06:00", "Europe/Berlin", at: "2026-03-28T06:00:00+01:00", open: false, next: "2026-04-03T22:00:00+02:00"),
    ]

    // Europe/Berlin: on 2026-10-25 (a Sunday) 03:00 CEST falls back to 02:00 CET; 02:00-02:59 happen twice.
    static let fallBackCases: [WindowCase] = [
        WindowCase("09:00..17:00", "Europe/Berlin", at: "2026-10-25T08:59:59+01:00", open: false, next: "2026-10-25T09:00:00+01:00"),
        WindowCase("09:00..17:00", "Europe/Berlin", at: "2026-10-24T17:00:00+02:00", open: false, next: "2026-10-25T09:00:00+01:00"),
        WindowCase("Mon..Fri 09:00..17:00", "Europe/Berlin", at: "2026-10-23T17:00:00+02:00", open: false, next: "2026-10-26T09:00:00+01:00"),
        // A repeated start opens at its first occurrence.
        WindowCase("Sun 02:30..04:00", "Europe/Berlin", at: "2026-10-25T02:29:59+02:00", open: false, next: "2026-10-25T02:30:00+02:00"),
        WindowCase("Sun 02:30..04:00", "Europe/Berlin", at: "2026-10-25T02:30:00+02:00", open: true),
        WindowCase("Sun 02:30..04:00", "Europe/Berlin", at: "2026-10-25T02:10:00+01:00", open: true),
        WindowCase("Sun 02:30..04:00", "Europe/Berlin", at: "2026-10-25T03:59:59+01:00", open: true),
        WindowCase("Sun 02:30..04:00", "Europe/Berlin", at: "2026-10-25T04:00:00+01:00", open: false, next: "2026-11-01T02:30:00+01:00"),
        WindowCase("02:00..02:30", "Europe/Berlin", at: "2026-10-24T23:00:00+02:00", open: false, next: "2026-10-25T02:00:00+02:00"),
        // A repeated end closes at its second occurrence.
        WindowCase("02:00..02:30", "Europe/Berlin", at: "2026-10-25T02:40:00+02:00", open: true),
        WindowCase("02:00..02:30", "Europe/Berlin", at: "2026-10-25T02:29:59+01:00", open: true),
        WindowCase("02:00..02:30", "Europe/Berlin", at: "2026-10-25T02:30:00+01:00", open: false, next: "2026-10-26T02:00:00+01:00"),
        WindowCase("01:00..02:30", "Europe/Berlin", at: "2026-10-25T00:59:59+02:00", open: false, next: "2026-10-25T01:00:00+02:00"),
        WindowCase("01:00..02:30", "Europe/Berlin", at: "2026-10-25T02:45:00+02:00", open: true),
        WindowCase("01:00..02:30", "Europe/Berlin", at: "2026-10-25T02:29:59+01:00", open: true),
        WindowCase("01:00..02:30", "Europe/Berlin", at: "2026-10-25T02:30:00+01:00", open: false, next: "2026-10-26T01:00:00+01:00"),
        WindowCase("Sat 22:00..02:30", "Europe/Berlin", at: "2026-10-25T02:45:00+02:00", open: true),
        WindowCase("Sat 22:00..02:30", "Europe/Berlin", at: "2026-10-25T02:29:59+01:00", open: true),
        WindowCase("Sat 22:00..02:30", "Europe/Berlin", at: "2026-10-25T02:30:00+01:00", open: false, next: "2026-10-31T22:00:00+01:00"),
        // Whole days are 25 hours long.
        WindowCase("Sun", "Europe/Berlin", at: "2026-10-24T23:59:59+02:00", open: false, next: "2026-10-25T00:00:00+02:00"),
        WindowCase("Sun", "Europe/Berlin", at: "2026-10-25T00:00:00+02:00", open: true),
        WindowCase("Sun", "Europe/Berlin", at: "2026-10-25T23:59:59+01:00", open: true),
        WindowCase("Sun", "Europe/Berlin", at: "2026-10-26T00:00:00+01:00", open: false, next: "2026-11-01T00:00:00+01:00"),
        WindowCase("Sat 22:00..06:00", "Europe/Berlin", at: "2026-10-25T05:59:59+01:00", open: true),
        WindowCase("Sat 22:00..06:00", "Europe/Berlin", at: "2026-10-25T06:00:00+01:00", open: false, next: "2026-10-31T22:00:00+01:00"),
    ]

    @Test(arguments: utcCases + springForwardCases + fallBackCases)
    func containsAndNextOpening(_ c: WindowCase) throws {
        let w = try window(c.window)
        let zone = try #require(TimeZone(identifier: c.zone))
        let t = instant(c.at)
        #expect(w.contains(t, in: zone) == c.isOpen)
        #expect(w.nextOpening(atOrAfter: t, in: zone) == instant(c.next))
    }

    @Test func sameWindowInOtherZone() throws {
        let w = try window("Mon..Fri 09:00..17:00")
        let t = instant("2026-01-05T08:30:00Z")
        #expect(!w.contains(t, in: utc))
        #expect(w.contains(t, in: berlin))
        #expect(w.nextOpening(atOrAfter: t, in: utc) == instant("2026-01-05T09:00:00Z"))
        #expect(w.nextOpening(atOrAfter: t, in: berlin) == t)
        let tokyo = try #require(TimeZone(identifier: "Asia/Tokyo"))
        #expect(w.nextOpening(atOrAfter: t, in: tokyo) == instant("2026-01-06T09:00:00+09:00"))
    }

    @Test func fixedOffsetZone() throws {
        let w = try window("Sat 22:00..02:00")
        let zone = try #require(TimeZone(secondsFromGMT: -5 * 3600 - 1800))
        #expect(w.nextOpening(atOrAfter: instant("2026-01-05T00:00:00Z"), in: zone)
            == instant("2026-01-10T22:00:00-05:30"))
        #expect(w.contains(instant("2026-01-11T01:59:59-05:30"), in: zone))
        #expect(!w.contains(instant("2026-01-11T02:00:00-05:30"), in: zone))
    }
}

/// A window and a stretch of three weeks (plus look-ahead) in which to check it.
struct PropertyScenario: Sendable, CustomTestStringConvertible {
    var zone: String
    /// First instant checked; instants and samples are this plus multiples of a minute.
    var start: String

    var testDescription: String { "\(zone) from \(start)" }
}

@Suite struct RotationWindowPropertyTests {
    static let windows = [
        "Mon..Fri 09:00..17:00", "Sat,Sun", "Fri 22:00..06:00", "Fri..Mon 23:30..00:30",
        "02:30..03:30", "Sun 02:15..02:45", "Mon..Sun", "Wed 00:00:30..00:01:10",
    ]
    static let scenarios = [
        PropertyScenario(zone: "UTC", start: "2026-03-16T00:00:00Z"),
        PropertyScenario(zone: "Europe/Berlin", start: "2026-03-16T00:00:17+01:00"),
        PropertyScenario(zone: "UTC", start: "2026-10-12T00:00:17Z"),
        PropertyScenario(zone: "Europe/Berlin", start: "2026-10-12T00:00:00+02:00"),
        // Cuba skips local midnight (00:00 -> 01:00) on 2026-03-08.
        PropertyScenario(zone: "America/Havana", start: "2026-03-01T00:00:00-05:00"),
    ]

    /// Checks 2016 instants 15 minutes apart through three weeks: t <= nextOpening(t) <= t + 14 days,
    /// the window is open at nextOpening(t) and closed one millisecond earlier, and
    /// closed at every whole minute after t before nextOpening(t).
    @Test(arguments: windows, scenarios)
    func nextOpeningIsEarliestOpenInstant(text: String, scenario: PropertyScenario) throws {
        let w = try window(text)
        let zone = try #require(TimeZone(identifier: scenario.zone))
        let base = instant(scenario.start)
        let instantCount = 3 * 7 * 24 * 4
        let minutesPerInstant = 15
        let sampleCount = (3 * 7 + 16) * 24 * 60
        let samples = (0..<sampleCount).map { w.contains(base + .minutes(Int64($0)), in: zone) }
        var firstOpenSample = [Int](repeating: sampleCount, count: sampleCount + 1)
        for j in stride(from: sampleCount - 1, through: 0, by: -1) {
            firstOpenSample[j] = samples[j] ? j : firstOpenSample[j + 1]
        }

        var failures: [String] = []
        for i in 0..<instantCount {
            let sample = i * minutesPerInstant
            let t = base + .minutes(Int64(sample))
            let next = w.nextOpening(atOrAfter: t, in: zone)
            var problems: [String] = []
            if next < t { problems.append("before t") }
            if !w.contains(next, in: zone) { problems.append("closed at nextOpening") }
            if w.contains(t, in: zone) != (next == t) { problems.append("contains(t) disagrees") }
            if next > t, w.contains(next - .milliseconds(1), in: zone) { problems.append("open 1ms earlier") }
            // A week ahead, or two when a DST gap swallows the weekly window.
            if next.timeIntervalSince(t) > 14 * 86_400 { problems.append("more than 14 days ahead") }
            let lastSample = base + .minutes(Int64(sampleCount - 1))
            if next > lastSample {
                problems.append("beyond sampled range")
            } else {
                let firstOpen = firstOpenSample[sample + 1]
                if firstOpen < sampleCount, base + .minutes(Int64(firstOpen)) < next {
                    problems.append("open at sample \(base + .minutes(Int64(firstOpen)))")
                }
            }
            if !problems.isEmpty { failures.append("t=\(t) next=\(next): \(problems.joined(separator: ", "))") }
        }
        let failureCount = failures.count
        #expect(failureCount == 0, "first failures: \(failures.prefix(5))")
    }

    /// Reference predicates on local weekday and time from `Calendar`, for windows
    /// whose boundaries are away from DST transitions.
    static let references: [(String, @Sendable (_ weekday: Int, _ minuteOfDay: Int) -> Bool)] = [
        ("Mon..Fri 09:00..17:00", { (2...6).contains($0) && (540..<1020).contains($1) }),
        ("Sat,Sun", { w, _ in w == 7 || w == 1 }),
        ("Fri 22:00..06:00", { ($0 == 6 && $1 >= 1320) || ($0 == 7 && $1 < 360) }),
        ("Fri..Mon 23:30..00:30", { ([6, 7, 1, 2].contains($0) && $1 >= 1410) || ([7, 1, 2, 3].contains($0) && $1 < 30) }),
        ("Tue 12:00..24:00", { $0 == 3 && $1 >= 720 }),
    ]

    @Test(arguments: ["2026-03-16T00:00:00+01:00", "2026-10-12T00:00:00+02:00"])
    func agreesWithCalendarInBerlin(start: String) throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = berlin
        let base = instant(start)
        for (text, reference) in Self.references {
            let w = try window(text)
            var mismatches: [Date] = []
            for minute in stride(from: 0, to: 21 * 24 * 60, by: 7) {
                let t = base + .minutes(Int64(minute))
                let local = calendar.dateComponents([.weekday, .hour, .minute], from: t)
                let expected = reference(local.weekday ?? 0, (local.hour ?? 0) * 60 + (local.minute ?? 0))
                if w.contains(t, in: berlin) != expected { mismatches.append(t) }
            }
            let mismatchCount = mismatches.count
            #expect(mismatchCount == 0, "\(text): \(mismatches.prefix(5))")
        }
    }
}

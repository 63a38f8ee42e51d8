import Foundation
import KeyRotation
import Testing

@Suite struct TimeSpanParsingTests {
    @Test(arguments: [
        ("1000usec", 1), ("2000us", 2), ("3000\u{00B5}s", 3), ("4000\u{03BC}s", 4),
        ("1msec", 1), ("250ms", 250),
        ("2seconds", 2_000), ("1second", 1_000), ("3sec", 3_000), ("45s", 45_000),
        ("2minutes", 120_000), ("1minute", 60_000), ("2min", 120_000), ("3m", 180_000),
        ("2hours", 7_200_000), ("1hour", 3_600_000), ("3hr", 10_800_000), ("24h", 86_400_000),
        ("2days", 172_800_000), ("1day", 86_400_000), ("90d", 7_776_000_000),
        ("2weeks", 1_209_600_000), ("1week", 604_800_000), ("1w", 604_800_000),
        ("2months", 5_260_032_000), ("1month", 2_630_016_000), ("1M", 2_630_016_000),
        ("2years", 63_115_200_000), ("1year", 31_557_600_000), ("1y", 31_557_600_000),
    ] as [(String, Int64)])
    func everyUnit(text: String, milliseconds: Int64) throws {
        #expect(try TimeSpan(parsing: text).milliseconds == milliseconds)
    }

    @Test(arguments: [
        ("1h 30min", 5_400_000),
        ("1h30min", 5_400_000),
        ("1 h 30 min", 5_400_000),
        ("  1h\t30min\n", 5_400_000),
        ("2d 3h 4min 5s 6ms", 183_845_006),
        ("1w 2d", 777_600_000),
        ("1y 1M", 34_187_616_000),
        ("1h 1h", 7_200_000),
        ("1.5h", 5_400_000),
        (".5s", 500),
        ("0.25min", 15_000),
        ("1.0005s", 1_000),
        ("1.9999s", 1_999),
        ("1s 500us", 1_000),
        ("1500us", 1),
        ("0.001s", 1),
        ("1.123456789012345678901s", 1_123),
        ("45", 45_000),
        ("1.5", 1_500),
        ("1h 30", 3_630_000),
        ("1 2", 3_000),
        ("0", 0),
        ("0s", 0),
        ("0.0ms", 0),
        ("0us", 0),
        ("000001s", 1_000),
    ] as [(String, Int64)])
    func combinations(text: String, milliseconds: Int64) throws {
        #expect(try TimeSpan(parsing: text).milliseconds == milliseconds)
    }

    @Test func unitsAreCaseSensitive() throws {
        #expect(try TimeSpan(parsing: "1M") != TimeSpan(parsing: "1m"))
        #expect(throws: TimeSpanError.self) { try TimeSpan(parsing: "1H") }
        #expect(throws: TimeSpanError.self) { try TimeSpan(parsing: "1Min") }
    }

    @Test func largestValue() throws {
        let max = TimeSpan(milliseconds: .max)
        #expect(try TimeSpan(parsing: "9223372036854775807ms") == max)
        #expect(try TimeSpan(parsing: "9223372036854775807999us") == max)
        #expect(try TimeSpan(parsing: max.description) == max)
    }

    @Test(arguments: [
        ("", #"empty time span """#),
        ("   ", #"empty time span "   ""#),
        ("-5s", #"negative numbers are not allowed in "-5s""#),
        ("1h -30min", #"negative numbers are not allowed in "1h -30min""#),
        ("5-3s", #"negative numbers are not allowed in "5-3s""#),
        ("3dayz", #"unknown unit "dayz" in "3dayz""#),
        ("1H", #"unknown unit "H" in "1H""#),
        ("5 ns", #"unknown unit "ns" in "5 ns""#),
        ("1e3s", #"unknown unit "e" in "1e3s""#),
        ("h", #"number missing before unit "h" in "h""#),
        ("1h min", #"number missing before unit "min" in "1h min""#),
        (".", #"invalid number "." in ".""#),
        ("1.s", #"invalid number "1." in "1.s""#),
        ("1.2.3s", #"invalid number "1.2.3" in "1.2.3s""#),
        ("1h,30min", #"unexpected character "," in "1h,30min""#),
        ("+5s", #"unexpected character "+" in "+5s""#),
        ("5s!", #"unexpected character "!" in "5s!""#),
        ("5_000s", #"unexpected character "_" in "5_000s""#),
        ("500us", #"non-zero time span is below the 1ms resolution in "500us""#),
        ("0.0001s", #"non-zero time span is below the 1ms resolution in "0.0001s""#),
        ("9223372036854775808ms", #"time span too large in "9223372036854775808ms""#),
        ("300000000y", #"time span too large in "300000000y""#),
        ("9223372036854775807ms 1ms", #"time span too large in "9223372036854775807ms 1ms""#),
        ("99999999999999999999999999999999999999999999s", #"time span too large in "99999999999999999999999999999999999999999999s""#),
    ])
    func errors(text: String, message: String) {
        let error = #expect(throws: TimeSpanError.self) { try TimeSpan(parsing: text) }
        #expect(error?.description == message)
    }
}

@Suite struct TimeSpanDescriptionTests {
    @Test(arguments: [
        (0, "0"),
        (1, "1ms"),
        (250, "250ms"),
        (45_000, "45s"),
        (120_000, "2min"),
        (5_400_000, "1h 30min"),
        (86_400_000, "1d"),
        (7_776_000_000, "90d"),
        (604_800_000, "7d"),
        (183_845_006, "2d 3h 4min 5s 6ms"),
        (86_400_001, "1d 1ms"),
        (31_557_600_000, "365d 6h"),
        (Int64.max, "106751991167d 7h 12min 55s 807ms"),
    ] as [(Int64, String)])
    func canonicalText(milliseconds: Int64, text: String) throws {
        let span = TimeSpan(milliseconds: milliseconds)
        #expect(span.description == text)
        #expect("\(span)" == text)
        #expect(try TimeSpan(parsing: text) == span)
    }

    @Test(arguments: ["90d", "24h", "1h 30min", "1h30min", "2min", "45s", "1w", "1.5h", "250ms", "45",
                      "1M", "1y", "2500us", "1 2", "0"])
    func parsedTextRoundTrips(text: String) throws {
        let span = try TimeSpan(parsing: text)
        let canonical = span.description
        #expect(try TimeSpan(parsing: canonical) == span)
        #expect(try TimeSpan(parsing: canonical).description == canonical)
    }

    @Test func valuesRoundTrip() throws {
        var generator = SplitMix64(seed: 42)
        for magnitude in 0..<63 {
            for _ in 0..<20 {
                let span = TimeSpan(milliseconds: Int64(generator.next() >> UInt64(1 + magnitude)))
                #expect(try TimeSpan(parsing: span.description) == span)
            }
        }
    }
}

@Suite struct TimeSpanArithmeticTests {
    @Test func constructors() {
        #expect(TimeSpan.milliseconds(7).milliseconds == 7)
        #expect(TimeSpan.seconds(7).milliseconds == 7_000)
        #expect(TimeSpan.minutes(7).milliseconds == 420_000)
        #expect(TimeSpan.hours(7).milliseconds == 25_200_000)
        #expect(TimeSpan.days(7).milliseconds == 604_800_000)
        #expect(TimeSpan.zero.milliseconds == 0)
        #expect(TimeSpan(milliseconds: 7) == .milliseconds(7))
    }

    @Test func constructorsClampAndSaturate() {
        #expect(TimeSpan(milliseconds: -1) == .zero)
        #expect(TimeSpan.seconds(-5) == .zero)
        #expect(TimeSpan.days(.max).milliseconds == .max)
        #expect(TimeSpan.days(.min) == .zero)
        var span = TimeSpan.seconds(1)
        span.milliseconds = -10
        #expect(span == .zero)
    }

    @Test func timeInterval() {
        #expect(TimeSpan.milliseconds(1_500).timeInterval == 1.5)
        #expect(TimeSpan.zero.timeInterval == 0)
        #expect(TimeSpan.days(1).timeInterval == 86_400)
    }

    @Test func additionAndSubtraction() {
        #expect(TimeSpan.hours(1) + .minutes(30) == .minutes(90))
        #expect(TimeSpan.hours(1) - .minutes(30) == .minutes(30))
        #expect(TimeSpan.minutes(30) - .hours(1) == .zero)
        #expect(TimeSpan.seconds(1) - .seconds(1) == .zero)
        #expect(TimeSpan(milliseconds: .max) + .milliseconds(1) == TimeSpan(milliseconds: .max))
        #expect(TimeSpan(milliseconds: .max) - TimeSpan(milliseconds: .max) == .zero)
    }

    @Test func multiplicationAndDivision() {
        #expect(TimeSpan.hours(1) * 3 == .hours(3))
        #expect(3 * TimeSpan.hours(1) == .hours(3))
        #expect(TimeSpan.hours(1) * 0 == .zero)
        #expect(TimeSpan.hours(1) * -2 == .zero)
        #expect(TimeSpan.days(1) * .max == TimeSpan(milliseconds: .max))
        #expect(TimeSpan.days(1) * .min == .zero)
        #expect(TimeSpan.hours(3) / 3 == .hours(1))
        #expect(TimeSpan.milliseconds(10) / 3 == .milliseconds(3))
        #expect(TimeSpan.milliseconds(10) / -3 == .zero)
    }

    @Test(arguments: [
        (1_000, 0.5, 500),
        (1_000, 0.0, 0),
        (1_000, 2.25, 2_250),
        (3, 0.5, 2),
        (1, 0.4, 0),
        (86_400_000, 0.1, 8_640_000),
        (1_000, -1.0, 0),
        (1_000, .nan, 0),
        (1_000, .infinity, .max),
        (.max, 2.0, .max),
    ] as [(Int64, Double, Int64)])
    func multipliedByFraction(milliseconds: Int64, fraction: Double, expected: Int64) {
        #expect(TimeSpan(milliseconds: milliseconds).multiplied(by: fraction).milliseconds == expected)
    }

    @Test func ordering() {
        let spans: [TimeSpan] = [.days(1), .zero, .milliseconds(1), .hours(24), .seconds(59)]
        #expect(spans.sorted() == [.zero, .milliseconds(1), .seconds(59), .days(1), .days(1)])
        #expect(TimeSpan.minutes(1) > .seconds(59))
        #expect(TimeSpan.minutes(1) <= .seconds(60))
        #expect(Set([TimeSpan.hours(24), .days(1)]).count == 1)
    }
}

@Suite struct TimeSpanCodableTests {
    private struct Config: Codable, Equatable {
        var maxAge: TimeSpan
    }

    @Test func encodesDescription() throws {
        let data = try JSONEncoder().encode(Config(maxAge: .minutes(90)))
        #expect(String(decoding: data, as: UTF8.self) == #"{"maxAge":"1h 30min"}"#)
    }

    @Test(arguments: [(#""90d""#, TimeSpan.days(90)), (#""1.5h""#, .minutes(90)), (#""0""#, .zero)])
    func decodesText(json: String, expected: TimeSpan) throws {
        #expect(try JSONDecoder().decode(TimeSpan.self, from: Data(json.utf8)) == expected)
    }

    @Test func roundTrips() throws {
        let config = Config(maxAge: TimeSpan(milliseconds: 183_845_006))
        let decoded = try JSONDecoder().decode(Config.self, from: JSONEncoder().encode(config))
        #expect(decoded == config)
    }

    @Test func badTextIsDataCorrupted() {
        let json = Data(#"{"maxAge":"3dayz"}"#.utf8)
        do {
            _ = try JSONDecoder().decode(Config.self, from: json)
            Issue.record("decoding succeeded")
        } catch let DecodingError.dataCorrupted(context) {
            #expect(context.debugDescription == #"unknown unit "dayz" in "3dayz""#)
            #expect(context.codingPath.map(\.stringValue) == ["maxAge"])
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func numberIsATypeMismatch() {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Config.self, from: Data(#"{"maxAge":90}"#.utf8))
        }
    }
}

@Suite struct DateTimeSpanTests {
    private let base = Date(timeIntervalSince1970: 1_790_000_000.25)

    @Test func addAndSubtract() {
        #expect(base + .seconds(90) == base.addingTimeInterval(90))
        #expect(base - .milliseconds(1_500) == base.addingTimeInterval(-1.5))
        #expect(base + .zero == base)
    }

    @Test(arguments: [0, 1, 999, 1_000, 86_400_001, 7_776_000_000, 3_155_760_000_000] as [Int64])
    func spanSinceInvertsAddition(milliseconds: Int64) {
        let span = TimeSpan(milliseconds: milliseconds)
        #expect((base + span).span(since: base) == span)
        #expect(base.span(since: base - span) == span)
    }

    @Test func spanSinceLaterIsZero() {
        #expect(base.span(since: base + .seconds(1)) == .zero)
        #expect(base.span(since: base) == .zero)
    }

    @Test func spanSinceRoundsToNearestMillisecond() {
        #expect(base.addingTimeInterval(0.0014).span(since: base) == .milliseconds(1))
        #expect(base.addingTimeInterval(0.0016).span(since: base) == .milliseconds(2))
    }

    @Test func spanSinceSaturates() {
        #expect(Date.distantFuture.span(since: .distantPast) == .days(1_460_972))
        #expect(Date(timeIntervalSince1970: 1e300).span(since: base) == TimeSpan(milliseconds: .max))
    }
}

/// A deterministic pseudo-random generator for property-style tests.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

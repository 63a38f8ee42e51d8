import Foundation
import Testing
@testable import KeyRotation

@Suite struct StateBodyWriterTests {
    /// A record with every kind of field set, varied by `n`.
    static func record(_ name: String, _ n: Int) -> KeyRecord {
        var record = KeyRecord(name: name, seed: UInt64(n))
        record.phase = [.idle, .creating, .deploying, .overlapping][n % 4]
        record.generation = n
        record.current = ProviderKeyRef(id: "k\(n)", name: "keyrotd/\(name)/g\(n)/ab\(n)", createdAt: t0 + .seconds(Int64(n)), generation: n)
        if n % 3 == 0 {
            record.previous = RetiringKey(
                key: ProviderKeyRef(id: "k\(n - 1)", name: "keyrotd/\(name)/old", createdAt: t0, generation: n - 1),
                retireAt: t0 + .hours(24), hooksDone: ["/h/\"q\""], deployedAt: t0 + .milliseconds(Int64(n)))
        }
        if n % 4 == 1 {
            record.pending = PendingKey(generation: n + 1, name: "keyrotd/\(name)/g\(n + 1)/cd", createAttempted: true)
        }
        record.nextDue = t0 + .days(90) + .milliseconds(Int64(n))
        record.jitterDraw = Double(n) / 7
        record.attempts = n % 5
        return record
    }

    @Test func writesWhatTheEncoderWritesAndEncodesOnlyWhatChanged() throws {
        var random = SplitMix64(seed: 42)
        var document = StateDocument()
        var writer = StateBodyWriter()
        var names = ["alpha", "beta", "dev-team", "zeta", "a/b", "ünïcode", "Zed", "a", "ab", "a-b", "q\"uote", "back\\slash",
                     "tab\tand\u{1}control", "é"]
        for (index, name) in names.enumerated() { document.keys[name] = Self.record(name, index) }
        #expect(try writer.body(of: document) == document.encoded())
        #expect(writer.lastEncodedRecords == names.count)
        #expect(try writer.body(of: document) == document.encoded())
        #expect(writer.lastEncodedRecords == 0, "nothing changed, nothing encoded")

        for step in 0..<300 {
            var changed = 0
            switch random.next() % 9 {
            case 0:
                let name = "new-\(step)"
                names.append(name)
                document.keys[name] = Self.record(name, step)
                changed = 1
            case 1 where names.count > 1:
                let name = names.remove(at: Int(random.next() % UInt64(names.count)))
                document.keys[name] = nil
            case 2:
                document.audit = AuditMemory(reported: ["unmanaged:k\(step)"], lastRun: t0 + .seconds(Int64(step)))
            case 3:
                document.budget = step % 2 == 0 ? BudgetMemory(month: "2026-11", raised: ["organization@\(step)"]) : nil
            case 4:
                document.audit = nil
            case 8:
                document.instance = [nil, "prod", "q\"u/o\\te\u{1}", "ünï"][Int(random.next() % 4)]
            case 5 where names.count > 1:
                // One key goes and another comes in the same persist: the count stays.
                let gone = names.remove(at: Int(random.next() % UInt64(names.count)))
                document.keys[gone] = nil
                let name = "swap-\(step)"
                names.append(name)
                document.keys[name] = Self.record(name, step)
                changed = 1
            default:
                let name = names[Int(random.next() % UInt64(names.count))]
                document.keys[name]?.attempts += 1
                document.keys[name]?.lastError = StepFailure(kind: .transient, code: "http_500", message: "step \(step)")
                changed = 1
            }
            let body = try writer.body(of: document)
            #expect(body == (try document.encoded()), "step \(step)")
            #expect(writer.lastEncodedRecords == changed, "step \(step)")
            let decoded = try StateDocument.decode(body, version: StateDocument.schemaVersion)
            #expect(decoded == document, "step \(step)")
        }
    }

    @Test func anEmptyDocument() throws {
        var writer = StateBodyWriter()
        #expect(try writer.body(of: StateDocument()) == Array("{\"keys\":{}}".utf8))
    }
}

@Suite struct CanonicalTimestampTests {
    @Test func formattingByHandMatchesTheFormatStyle() {
        var random = SplitMix64(seed: 7)
        let edges: [Int64] = [0, 1, 999, 1000, 86_399_999, 86_400_000, 951_782_400_000 /* 2000-02-29 */, 4_107_542_399_999,
                              253_402_300_799_999 /* 9999-12-31T23:59:59.999 */]
        let draws = (0..<20_000).map { _ in Int64(random.next() % 253_402_300_800_000) }
        for milliseconds in edges + draws {
            let hand = Timestamp.formatCanonical(milliseconds)
            #expect(hand == Timestamp.formatWithStyle(milliseconds), "\(milliseconds)")
            #expect(hand.flatMap(Timestamp.parseCanonical) == milliseconds, "\(milliseconds)")
            #expect(hand.flatMap(Timestamp.parseWithStyle)?.millisecondsSince1970 == milliseconds, "\(milliseconds)")
        }
    }

    @Test func outsideTheCanonicalRangeTheFormatStyleWrites() {
        #expect(Timestamp.formatCanonical(-1) == nil)
        #expect(Timestamp.format(Date(millisecondsSince1970: -250)) == "1969-12-31T23:59:59.750Z")
        #expect(Timestamp.formatCanonical(253_402_300_800_000) == nil)
    }

    @Test(arguments: [
        "2026-02-29T00:00:00.000Z", "2026-04-31T00:00:00.000Z", "2026-13-01T00:00:00.000Z", "2026-00-10T00:00:00.000Z",
        "2026-09-21T24:00:00.000Z", "2026-09-21T14:60:00.000Z", "2026-09-21T14:13:60.000Z", "2026-09-21T14:13:20.000z",
        "2026-09-21 14:13:20.000Z", "2026-09-21T14:13:20.00+Z", "1969-12-31T23:59:59.999Z", "+026-09-21T14:13:20.000Z",
    ])
    func theHandParserLeavesAnythingElseToTheFormatStyle(text: String) {
        #expect(Timestamp.parseCanonical(text) == nil)
    }

    @Test func leapDays() {
        #expect(Timestamp.parseCanonical("2000-02-29T00:00:00.000Z") == 951_782_400_000)
        #expect(Timestamp.parseCanonical("2100-02-29T00:00:00.000Z") == nil)
        #expect(Timestamp.parseCanonical("2028-02-29T12:00:00.500Z") == Timestamp.parseWithStyle("2028-02-29T12:00:00.500Z")?.millisecondsSince1970)
    }
}

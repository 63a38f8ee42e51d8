import Testing
@testable import KeyRotationAdapters

/// Line cutting, redaction and the output limit, without processes.
@Suite struct HookOutputLinesTests {
    private let secret = Array("sk-SECRET-1234".utf8)

    private func feed(_ chunks: [String], limit: Int = 1000, secret: [UInt8]? = nil)
        -> (items: [HookOutputLines.Item], lines: HookOutputLines)
    {
        var lines = HookOutputLines(limit: limit, secret: secret)
        var items: [HookOutputLines.Item] = []
        for chunk in chunks {
            items += Array(chunk.utf8).withUnsafeBytes { lines.consume($0) }
        }
        items += lines.finish()
        return (items, lines)
    }

    @Test func linesAreCutAtNewlinesAcrossChunks() {
        let (items, lines) = feed(["one\ntw", "o\r\n\n\nthr", "ee"])
        #expect(items == [.line("one"), .line("two"), .line("three")])
        #expect(lines.lastLine == "three")
    }

    @Test func everyOccurrenceOfTheSecretIsRedacted() {
        let (items, _) = feed(["a sk-SECRET-1234 b sk-SECRET-1234sk-SECRET-1234\n", "sk-SECRET-123 is not it\n"], secret: secret)
        #expect(items == [
            .line("a <redacted> b <redacted><redacted>"), .line("sk-SECRET-123 is not it"),
        ])
    }

    @Test func aSecretSplitAcrossChunksIsStillRedacted() {
        let (items, _) = feed(["key=sk-SEC", "RET-1234\n"], secret: secret)
        #expect(items == [.line("key=<redacted>")])
    }

    @Test func outputPastTheLimitIsDroppedAfterOneTruncatedItem() {
        let (items, lines) = feed(["12345\n", "67890\n", "abc\n", "d\n"], limit: 10)
        #expect(items == [.line("12345"), .line("67890"), .truncated])
        #expect(lines.truncated)
        #expect(lines.lastLine == "d")
    }

    /// A line cut short must not show the beginning of the secret at the cut.
    @Test func aLineCutInsideTheSecretHidesItsStart() {
        let long = String(repeating: "x", count: HookOutputLines.lastLineLimit - 5) + "sk-SECRET-1234 tail"
        let (items, lines) = feed([long + "\n"], limit: 10, secret: secret)
        #expect(items == [.truncated])
        let last = lines.lastLine ?? ""
        #expect(last.hasSuffix("x<redacted>"))
        #expect(!last.contains("sk-"))
    }

    @Test func redactionOfACutLineCoversAnyStartOfTheSecret() {
        #expect(HookOutputLines.redact(Array("value sk-SE".utf8), secret: secret, cut: true) == "value <redacted>")
        #expect(HookOutputLines.redact(Array("value sk-SE".utf8), secret: secret, cut: false) == "value sk-SE")
        #expect(HookOutputLines.redact(Array("no secret".utf8), secret: [], cut: true) == "no secret")
    }

    @Test func memoryStaysBoundedForOneEndlessLine() {
        var lines = HookOutputLines(limit: 100, secret: nil)
        let chunk = [UInt8](repeating: UInt8(ascii: "y"), count: 64 * 1024)
        var items: [HookOutputLines.Item] = []
        for _ in 0..<64 { items += chunk.withUnsafeBytes { lines.consume($0) } }
        items += lines.finish()
        #expect(items == [.truncated])
        #expect(lines.lastLine?.utf8.count == HookOutputLines.lastLineLimit)
    }
}

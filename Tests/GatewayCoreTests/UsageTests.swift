import GatewayCore
import Testing

@Suite struct UsageTests {
    static func usage(_ text: String) -> Usage? {
        Usage.inResponse(Array(text.utf8))
    }

    @Test func readsTopLevelUsage() {
        #expect(Self.usage(#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}}"#)
            == Usage(promptTokens: 12, completionTokens: 34))
        #expect(Self.usage(#"{"usage" : { "total_tokens" : 5 , "prompt_tokens" : 5 } }"#) == Usage(promptTokens: 5, completionTokens: 0))
        #expect(Self.usage(#"{"us\u0061ge":{"prompt_\u0074okens":1,"completion_tokens":2}}"#) == Usage(promptTokens: 1, completionTokens: 2))
    }

    @Test(arguments: [
        #"{"id":"x"}"#,  // absent
        #"{"usage":null}"#,
        #"{"usage":[]}"#,
        #"{"usage":{}}"#,  // no prompt_tokens
        #"{"usage":{"completion_tokens":3}}"#,
        #"{"usage":{"prompt_tokens":-1,"completion_tokens":3}}"#,
        #"{"usage":{"prompt_tokens":1.5}}"#,
        #"{"usage":{"prompt_tokens":"1"}}"#,
        #"{"usage":{"prompt_tokens":1,"completion_tokens":null}}"#,
        #"{"usage":{"prompt_tokens":1,"prompt_tokens":2}}"#,  // which one would be billed?
        #"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#,
        #"{"x":{"usage":{"prompt_tokens":1}}}"#,  // not top level
        #"{"usage":{"prompt_tokens":1}"#,  // truncated
        #"{"usage":{"prompt_tokens":1}} trailing"#,
        #"[{"usage":{"prompt_tokens":1}}]"#,
        "",
    ])
    func absentOrMalformedUsageIsNil(text: String) {
        #expect(Self.usage(text) == nil)
    }
}

@Suite struct StreamUsageScannerTests {
    static let chunk1 = #"{"id":"a","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}]}"#
    static let chunk2 = #"{"id":"a","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}"#

    /// What Mistral sends: `data: {json}` events, the last with usage, then `data: [DONE]`.
    static let mistral = "data: \(chunk1)\n\ndata: \(chunk2)\n\ndata: [DONE]\n\n"

    static func scan(_ chunks: [[UInt8]]) -> StreamUsageScanner {
        var scanner = StreamUsageScanner()
        for chunk in chunks { scanner.consume(chunk) }
        return scanner
    }

    static func scan(_ text: String) -> StreamUsageScanner {
        scan([Array(text.utf8)])
    }

    @Test func readsMistralsStream() {
        let scanner = Self.scan(Self.mistral)
        #expect(scanner.usage == Usage(promptTokens: 7, completionTokens: 2))
        #expect(scanner.finished)
        #expect(scanner.events == 2)
    }

    /// Every split into two chunks, and every byte its own chunk, in LF, CRLF and CR.
    /// A comment and an event of two data lines too: a line end taken for two (CR, then
    /// LF as an empty line) would end that event after its first line.
    @Test(arguments: ["\n", "\r\n", "\r"])
    func chunksSplitAnywhereGiveTheSameResult(newline: String) {
        let stream = ": ping\ndata: {\"object\":\ndata: \"chunk\"}\n\n" + Self.mistral
        let text = Array(stream.replacingNewlines(with: newline).utf8)
        for split in 0...text.count {
            let scanner = Self.scan([Array(text[..<split]), Array(text[split...])])
            #expect(scanner.usage == Usage(promptTokens: 7, completionTokens: 2), "split at \(split)")
            #expect(scanner.finished && scanner.events == 3, "split at \(split)")
        }
        let bytewise = Self.scan(text.map { [$0] })
        #expect(bytewise.usage == Usage(promptTokens: 7, completionTokens: 2))
        #expect(bytewise.finished && bytewise.events == 3)
        // A CRLF split between its CR and LF is still one line end, not an empty line too.
        let threeWay = Self.scan(text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated().map { index, part in
            index == 0 ? Array(part) : [UInt8(ascii: "\n")] + Array(part)
        })
        #expect(threeWay.usage == Usage(promptTokens: 7, completionTokens: 2))
    }

    @Test func theLastUsageWins() {
        let text = """
            data: {"usage":{"prompt_tokens":1,"completion_tokens":1}}

            data: {"usage":{"prompt_tokens":5,"completion_tokens":8}}

            data: {"usage":null}

            data: {"choices":[]}


            """
        let scanner = Self.scan(text)
        #expect(scanner.usage == Usage(promptTokens: 5, completionTokens: 8))
        #expect(scanner.events == 4)
        #expect(!scanner.finished)
    }

    @Test func commentsAndOtherFieldsAreIgnored() {
        let text = """
            : keep-alive
            event: chunk
            id: 1
            retry: 1000
            data: {"usage":{"prompt_tokens":3,"completion_tokens":4}}
            : a comment inside the event

            :data: {"usage":{"prompt_tokens":99}}

            datum: {"usage":{"prompt_tokens":98}}


            """
        let scanner = Self.scan(text)
        #expect(scanner.usage == Usage(promptTokens: 3, completionTokens: 4))
        #expect(scanner.events == 1)
    }

    @Test func dataLinesOfOneEventAreJoined() {
        // WHATWG: the data lines joined by "\n"; JSON allows the newline as a blank.
        let text = "data: {\"usage\":\ndata: {\"prompt_tokens\":2,\ndata:\"completion_tokens\":6}}\n\n"
        #expect(Self.scan(text).usage == Usage(promptTokens: 2, completionTokens: 6))
        // Only one space after the colon is dropped; no space is fine too.
        #expect(Self.scan("data:{\"usage\":{\"prompt_tokens\":1}}\n\n").usage == Usage(promptTokens: 1, completionTokens: 0))
        #expect(Self.scan("data:  {\"usage\":{\"prompt_tokens\":1}}\n\n").usage == Usage(promptTokens: 1, completionTokens: 0))
    }

    @Test func doneMustBeTheWholeData() {
        #expect(Self.scan("data: [DONE]\n\n").finished)
        #expect(Self.scan("data:[DONE]\r\n\r\n").finished)
        #expect(!Self.scan("data: [DONE] \n\n").finished)
        #expect(!Self.scan("data: [DONE]\n").finished)  // the event never ended
        #expect(!Self.scan("data: [done]\n\n").finished)
        #expect(!Self.scan(": data: [DONE]\n\n").finished)
    }

    @Test func malformedEventsAreSkippedNotFatal() {
        let text = """
            data: {"usage":{"prompt_tokens":1,"completion_tokens":1}}

            data: {"usage":{"prompt_tokens":50,"completion_tokens":50}

            data: not json

            data: {"usage":{"prompt_tokens":2,"completion_tokens":3}}

            data: [DONE]


            """
        let scanner = Self.scan(text)
        #expect(scanner.usage == Usage(promptTokens: 2, completionTokens: 3))
        #expect(scanner.events == 2)
        #expect(scanner.finished)
    }

    @Test func anUnfinishedEventIsNotCounted() {
        let scanner = Self.scan(#"data: {"usage":{"prompt_tokens":1,"completion_tokens":1}}"#)
        #expect(scanner.usage == nil)
        #expect(scanner.events == 0)
    }

    @Test func aLeadingByteOrderMarkIsDropped() {
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let text = bom + Array("data: {\"usage\":{\"prompt_tokens\":4}}\n\n".utf8)
        for split in 0...4 {
            let scanner = Self.scan([Array(text[..<split]), Array(text[split...])])
            #expect(scanner.usage == Usage(promptTokens: 4, completionTokens: 0), "split at \(split)")
        }
        // Only at the start: a BOM later is part of a line (here it spoils the field name).
        let later = Array("data: {}\n\n".utf8) + bom + Array("data: {\"usage\":{\"prompt_tokens\":4}}\n\n".utf8)
        #expect(Self.scan([later]).usage == nil)
        // A partial BOM is ordinary bytes.
        let partial: [UInt8] = [0xEF, 0xBB] + Array("\n\ndata: {\"usage\":{\"prompt_tokens\":4}}\n\n".utf8)
        #expect(Self.scan([partial]).usage == Usage(promptTokens: 4, completionTokens: 0))
    }

    @Test func anOversizedEventIsSkippedWithoutHoldingIt() {
        let huge = "data: {\"usage\":{\"prompt_tokens\":9},\"pad\":\"" + String(repeating: "x", count: StreamUsageScanner.maxEventBytes) + "\"}\n\n"
        let scanner = Self.scan(huge + "data: {\"usage\":{\"prompt_tokens\":1}}\n\n")
        #expect(scanner.usage == Usage(promptTokens: 1, completionTokens: 0))
        #expect(scanner.events == 1)
        let manyLines = String(repeating: "data: " + String(repeating: "y", count: 1000) + "\n", count: 1100) + "\n"
        #expect(Self.scan(manyLines + "data: {\"usage\":{\"prompt_tokens\":2}}\n\n").events == 1)
    }
}

extension String {
    func replacingNewlines(with newline: String) -> String {
        split(separator: "\n", omittingEmptySubsequences: false).joined(separator: newline)
    }
}

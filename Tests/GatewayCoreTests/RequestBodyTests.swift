import GatewayCore
import Testing

@Suite struct RequestBodyTests {
    static func inspect(_ text: String) throws(BodyProblem) -> RequestFacts {
        try RequestBody.inspect(Array(text.utf8))
    }

    static func problem(_ text: String) -> String? {
        do {
            _ = try inspect(text)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func readsTheTopLevelFacts() throws {
        let facts = try Self.inspect(#"{"messages":[{"role":"user","content":"hi"}],"model":"mistral-small-latest","stream":true,"max_tokens":256}"#)
        #expect(facts == RequestFacts(model: "mistral-small-latest", stream: true, maxTokens: 256))
        #expect(try Self.inspect(#"{"model":"m"}"#) == RequestFacts(model: "m", stream: false, maxTokens: nil))
        #expect(try Self.inspect(#" { "model" : "m" , "stream" : false , "max_tokens" : 0 } "#)
            == RequestFacts(model: "m", stream: false, maxTokens: 0))
        #expect(try Self.inspect("\t\r\n{\"model\":\"m\",\"stream\":null,\"max_tokens\":null}\n")
            == RequestFacts(model: "m", stream: false, maxTokens: nil))
    }

    @Test func nestedMembersAreNotTopLevel() throws {
        let facts = try Self.inspect(#"{"tools":{"model":"other","stream":"x","max_tokens":-1},"model":"mine","x":[{"model":1}]}"#)
        #expect(facts == RequestFacts(model: "mine", stream: false, maxTokens: nil))
    }

    @Test func escapesInKeysAndInTheModelAreDecoded() throws {
        #expect(try Self.inspect(#"{"mod\u0065l":"m"}"#).model == "m")
        #expect(try Self.inspect(#"{"\u006d\u006F\u0064\u0065\u006c":"m"}"#).model == "m")
        #expect(try Self.inspect(#"{"model":"mistral\u002dsmall\/x"}"#).model == "mistral-small/x")
        #expect(try Self.inspect(#"{"model":"a\"b\\c\n\t\b\f\r"}"#).model == "a\"b\\c\n\t\u{08}\u{0C}\r")
        #expect(try Self.inspect(#"{"model":"\ud83d\ude00 é"}"#).model == "😀 é")
        #expect(try Self.inspect(#"{"model":"😀 é"}"#).model == "😀 é")
        #expect(try Self.inspect(#"{"max\u005ftokens":7,"model":"m"}"#).maxTokens == 7)
        #expect(try Self.inspect(#"{"str\u0065am":true,"model":"m"}"#).stream)
    }

    /// The gateway checks one member; upstream might use the other one.
    @Test(arguments: [
        #"{"model":"a","model":"b"}"#,
        #"{"model":"a","mod\u0065l":"b"}"#,
        #"{"model":"a","stream":true,"stream":false}"#,
        #"{"model":"a","max_tokens":1,"max_tokens":100000}"#,
        #"{"model":"a","max_tokens":null,"max_tokens":5}"#,
    ])
    func duplicateFactKeysAreRefused(text: String) {
        #expect(Self.problem(text)?.contains("is given twice") == true)
    }

    @Test func otherDuplicateKeysPass() throws {
        #expect(try Self.inspect(#"{"model":"a","temperature":1,"temperature":2}"#).model == "a")
    }

    @Test(arguments: [
        ("", "the body is empty"),
        ("   ", "the body is empty"),
        ("[]", "not a JSON object"),
        (#""model""#, "not a JSON object"),
        ("{}", "missing \"model\""),
        (#"{"Model":"m"}"#, "missing \"model\""),
        (#"{"model":1}"#, "\"model\" must be a string"),
        (#"{"model":null}"#, "\"model\" must be a string"),
        (#"{"model":""}"#, "\"model\" must be a non-empty string"),
        (#"{"model":"m","stream":"true"}"#, "\"stream\" must be true or false"),
        (#"{"model":"m","stream":1}"#, "\"stream\" must be true or false"),
        (#"{"model":"m","max_tokens":-1}"#, "\"max_tokens\" must be a non-negative integer"),
        (#"{"model":"m","max_tokens":1.5}"#, "\"max_tokens\" must be a non-negative integer"),
        (#"{"model":"m","max_tokens":10.0}"#, "\"max_tokens\" must be a non-negative integer"),
        (#"{"model":"m","max_tokens":1e3}"#, "\"max_tokens\" must be a non-negative integer"),
        (#"{"model":"m","max_tokens":"5"}"#, "\"max_tokens\" must be a non-negative integer"),
        (#"{"model":"m","max_tokens":99999999999999999999}"#, "\"max_tokens\" must be a non-negative integer"),
    ])
    func refusesBadFacts(text: String, message: String) {
        let problem = Self.problem(text)
        #expect(problem?.contains(message) == true, "\(problem ?? "accepted")")
    }

    @Test(arguments: [
        (#"{"model":"m"} x"#, "unexpected data after the JSON object"),
        (#"{"model":"m"}{}"#, "unexpected data after the JSON object"),
        (#"{"model":"m"#, "unterminated string"),
        (#"{"model":"m""#, "expected ',' or '}' in an object"),
        (#"{"model":"m",}"#, "expected a member name in quotes"),
        (#"{"model":"m","a":[1,]}"#, "expected a JSON value"),
        (#"{"model":"m","a":[1 2]}"#, "expected ',' or ']' in an array"),
        (#"{'model':'m'}"#, "expected a member name in quotes"),
        (#"{model:"m"}"#, "expected a member name in quotes"),
        (#"{"model" "m"}"#, "expected ':' after a member name"),
        (#"{"model":"m" /* c */}"#, "expected ',' or '}' in an object"),
        (#"{"model":"m","a":01}"#, "expected ',' or '}' in an object"),
        (#"{"model":"m","a":-}"#, "expected a digit"),
        (#"{"model":"m","a":1.}"#, "expected a digit after '.'"),
        (#"{"model":"m","a":.5}"#, "expected a JSON value"),
        (#"{"model":"m","a":+1}"#, "expected a JSON value"),
        (#"{"model":"m","a":1e}"#, "expected a digit in the exponent"),
        (#"{"model":"m","a":1e+}"#, "expected a digit in the exponent"),
        (#"{"model":"m","a":NaN}"#, "expected a JSON value"),
        (#"{"model":"m","a":Infinity}"#, "expected a JSON value"),
        (#"{"model":"m","a":tru}"#, "expected a JSON value"),
        (#"{"model":"m","a":True}"#, "expected a JSON value"),
        (#"{"model":"m","a":nul"#, "expected a JSON value"),
        (#"{"model":"\x"}"#, "invalid escape"),
        (#"{"model":"\u12"}"#, "expected four hex digits after \\u"),
        (#"{"model":"\u12G4"}"#, "expected four hex digits after \\u"),
        (#"{"model":"\ud800"}"#, "a high surrogate escape must be followed by a low one"),
        (#"{"model":"\ud800\u0041"}"#, "a high surrogate escape must be followed by a low one"),
        (#"{"model":"\udc00"}"#, "a lone low surrogate escape"),
        ("{\"model\":\"a\tb\"}", "a control character must be escaped in a string"),
        ("{\"model\":\"a\nb\"}", "a control character must be escaped in a string"),
        ("\u{FEFF}{\"model\":\"m\"}", "not a JSON object"),
    ])
    func refusesInvalidJSON(text: String, message: String) {
        let problem = Self.problem(text)
        #expect(problem?.hasPrefix("invalid JSON body: ") == true, "\(problem ?? "accepted")")
        #expect(problem?.contains(message) == true, "\(problem ?? "accepted")")
    }

    @Test(arguments: [
        [0xFF],  // never in UTF-8
        [0xC0, 0x80],  // overlong NUL
        [0xC1, 0xBF],  // overlong
        [0xE0, 0x80, 0xAF],  // overlong "/"
        [0xED, 0xA0, 0x80],  // UTF-8 surrogate
        [0xF4, 0x90, 0x80, 0x80],  // above U+10FFFF
        [0xF5, 0x80, 0x80, 0x80],
        [0xE2, 0x82],  // truncated
        [0x80],  // lone continuation
        [0xC3, 0x41],  // bad continuation
    ] as [[UInt8]])
    func refusesInvalidUTF8InStrings(sequence: [UInt8]) {
        let body = Array(#"{"model":"m","x":"a"#.utf8) + sequence + Array(#"b"}"#.utf8)
        #expect(throws: BodyProblem.self) { try RequestBody.inspect(body) }
        let inModel = Array(#"{"model":"a"#.utf8) + sequence + Array(#""}"#.utf8)
        #expect(throws: BodyProblem.self) { try RequestBody.inspect(inModel) }
    }

    @Test func acceptsEveryValidUTF8Length() throws {
        let body: [UInt8] = Array(#"{"model":""#.utf8) + [0x41, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x99, 0x82, 0xF4, 0x8F, 0xBF, 0xBF]
            + Array(#""}"#.utf8)
        #expect(try RequestBody.inspect(body).model == "Aé€🙂\u{10FFFF}")
    }

    @Test func nestingIsLimitedTo128Levels() throws {
        func nested(_ depth: Int) -> String {
            // The top-level object is level 1.
            #"{"model":"m","x":"# + String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1) + "}"
        }
        #expect(try Self.inspect(nested(128)).model == "m")
        #expect(Self.problem(nested(129))?.contains("nested deeper than 128 levels") == true)
        #expect(Self.problem(nested(100_000))?.contains("nested deeper than 128 levels") == true)
        let objects = #"{"model":"m","x":"# + String(repeating: #"{"a":"#, count: 127) + "1" + String(repeating: "}", count: 128)
        #expect(try Self.inspect(objects).model == "m")
    }

    // MARK: settingMaxTokens

    static func setting(_ text: String, _ value: Int) -> String {
        String(decoding: RequestBody.settingMaxTokens(Array(text.utf8), to: value), as: UTF8.self)
    }

    @Test func replacesAnExistingValueInPlace() {
        #expect(Self.setting(#"{"model":"m","max_tokens":100000,"stream":true}"#, 1024)
            == #"{"model":"m","max_tokens":1024,"stream":true}"#)
        #expect(Self.setting(#"{ "max_tokens" : null , "model":"m"}"#, 5) == #"{ "max_tokens" : 5 , "model":"m"}"#)
        #expect(Self.setting(#"{"max\u005ftokens":7,"model":"m"}"#, 8) == #"{"max\u005ftokens":8,"model":"m"}"#)
    }

    @Test func appendsWhenAbsent() {
        #expect(Self.setting(#"{"model":"m"}"#, 64) == #"{"model":"m","max_tokens":64}"#)
        #expect(Self.setting("{\"model\":\"m\" \n}\n", 64) == "{\"model\":\"m\" \n,\"max_tokens\":64}\n")
        #expect(Self.setting("{}", 1) == #"{"max_tokens":1}"#)
        #expect(Self.setting(" { \n } ", 1) == " { \n \"max_tokens\":1} ")
        #expect(Self.setting(#"{"model":"m","x":{"max_tokens":3}}"#, 9) == #"{"model":"m","x":{"max_tokens":3},"max_tokens":9}"#)
    }

    @Test func leavesNonObjectsAlone() {
        #expect(Self.setting("[1]", 5) == "[1]")
        #expect(Self.setting("{", 5) == "{")
    }
}

@Suite struct RequestBodySizeTests {
    /// An 8 MiB body (the default max_body_bytes) of many messages: validated, read and
    /// edited in one pass each. Prints the time (debug builds are far slower than release).
    @Test func aLargestDefaultBodyIsInspectedAndEdited() throws {
        let message = #"{"role":"user","content":"Lorem ipsum dolor sit amet, \u00e9\u00e8 \"quoted\" 日本語 🙂 1234567890"},"#
        var text = #"{"model":"mistral-small-latest","messages":["#
        while text.utf8.count < (8 << 20) - message.utf8.count - 100 { text += message }
        text += #"{"role":"user","content":"end"}],"temperature":0.7}"#
        let bytes = Array(text.utf8)
        let clock = ContinuousClock()
        var facts: RequestFacts?
        let inspected = try clock.measure { facts = try RequestBody.inspect(bytes) }
        var edited: [UInt8] = []
        let edit = clock.measure { edited = RequestBody.settingMaxTokens(bytes, to: 1024) }
        #expect(facts == RequestFacts(model: "mistral-small-latest", stream: false, maxTokens: nil))
        #expect(edited.count == bytes.count + #","max_tokens":1024"#.utf8.count)
        #expect(try RequestBody.inspect(edited).maxTokens == 1024)
        print("inspect of \(bytes.count) bytes: \(inspected); settingMaxTokens: \(edit)")
    }
}

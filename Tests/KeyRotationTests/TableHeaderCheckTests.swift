import Testing
@testable import KeyRotation

/// A table header that starts with something other than a key made TOMLKit's
/// toml++ abort the process (an assertion in `parse_key`): `check-config` died of
/// SIGABRT, and so would the daemon on a reload. Found by `ConfigFuzzTests`.
@Suite struct TableHeaderCheckTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var text: String
        var line: Int
        var column: Int
        var testDescription: String { text.debugDescription }
    }

    static let malformed: [Case] = [
        Case(text: "[!]", line: 1, column: 2),
        Case(text: "[#]\n", line: 1, column: 2),
        Case(text: "[\n", line: 1, column: 2),
        Case(text: "[\r\n", line: 1, column: 2),
        Case(text: "[ \t=]", line: 1, column: 4),
        Case(text: "[[[a]]]", line: 1, column: 3),
        Case(text: "[é]", line: 1, column: 2),
        Case(text: "[\u{202E}keys.dev-team]", line: 1, column: 2),
        Case(text: "\u{FEFF}[!]", line: 1, column: 2),
        Case(text: validConfig + "\n  [!]", line: 35, column: 4),
        Case(text: "a = [\n  1,\n]\nb = \"\"\"\n]\n\"\"\"\n[!]", line: 7, column: 2),
    ]

    @Test(arguments: malformed)
    func aHeaderWithoutAKeyIsASyntaxErrorNotACrash(_ c: Case) {
        let parsed = ConfigParser.parse(c.text)
        #expect(parsed.configuration == nil)
        #expect(parsed.problems.map { $0.formatted(file: "f") }.count == 1)
        let line = parsed.problems.first?.formatted(file: "f") ?? ""
        #expect(line.hasPrefix("f:\(c.line):\(c.column): TOML syntax error: a table header must start with a key"), "\(line)")
        #expect(!line.contains("\n"))
    }

    /// Where toml++ does not look for a header, nothing is reported: inside
    /// strings, arrays and comments, and the malformed headers toml++ reports itself.
    @Test(arguments: [
        "a = \"\"\"\n[!]\n\"\"\"", "a = '''\n[!]\n'''", "a = [\n[!]\n]", "# [!]", "a = \"[!]\"", "a = '[!'\n",
        "[ [a]]", "[]", "[", "[ ", "[a.!]", "[\"!\"]", "['!']", "[_a]", "[-a]", "[9]", "x = { a = [1] }\n[keys]",
    ])
    func textTomlParsesItselfIsLeftAlone(_ text: String) {
        #expect(TableHeaderCheck.firstMalformedHeader(in: text) == nil)
        _ = ConfigParser.parse(text)
    }
}

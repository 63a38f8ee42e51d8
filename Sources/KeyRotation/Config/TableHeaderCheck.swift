/// Finds a table header whose key starts with neither a bare-key character nor a
/// quote — `[!]`, `[é]`, `[[[a]]]`, a lone `[` — before the text reaches TOMLKit:
/// its toml++ 3 parser asserts on one (`parse_key`) instead of reporting a syntax
/// error, and SwiftPM builds C++ with assertions on, so the process aborts (a
/// typo in the configuration would kill the daemon on reload).
///
/// A small lexer, enough to know where toml++ looks for a header: the first
/// non-blank character of a line that is inside no string and no array or
/// inline table. Text it cannot follow (an unterminated string) toml++ rejects
/// before any later header.
enum TableHeaderCheck {
    /// The 1-based line and column of the character after the header's brackets
    /// and blanks, and that character.
    struct Finding: Equatable {
        var line: Int
        var column: Int
        var found: Unicode.Scalar

        var problem: ConfigProblem {
            let shown = (0x21...0x7E).contains(found.value)
                ? "'\(found)'" : "U+" + String(found.value, radix: 16, uppercase: true).leftPadded(to: 4)
            return ConfigProblem(
                .line(line, column: column),
                "TOML syntax error: a table header must start with a key (bare or quoted), saw \(shown)")
        }
    }

    static func firstMalformedHeader(in text: String) -> Finding? {
        var scalars = Array(text.unicodeScalars)
        if scalars.first == "\u{FEFF}" { scalars.removeFirst() }
        var line = 1
        var lineStart = 0
        var depth = 0
        var atLineStart = true
        var index = 0

        func starts(with literal: String, at position: Int) -> Bool {
            literal.unicodeScalars.enumerated().allSatisfy { offset, scalar in
                position + offset < scalars.count && scalars[position + offset] == scalar
            }
        }
        /// The index just past the string opened at `index` by `quote`.
        func skipString(quote: Unicode.Scalar) -> Int {
            let triple = String(repeating: Character(quote), count: 3)
            let multiLine = starts(with: triple, at: index)
            var position = index + (multiLine ? 3 : 1)
            while position < scalars.count {
                let scalar = scalars[position]
                if quote == "\"" && scalar == "\\" {
                    position += 2
                    continue
                }
                if multiLine ? starts(with: triple, at: position) : scalar == quote {
                    return position + (multiLine ? 3 : 1)
                }
                if scalar == "\n" {
                    if !multiLine { return position }
                    line += 1
                    lineStart = position + 1
                }
                position += 1
            }
            return position
        }

        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case "\n":
                line += 1
                lineStart = index + 1
                atLineStart = true
                index += 1
            case " ", "\t", "\r":
                index += 1
            case "#":
                while index < scalars.count && scalars[index] != "\n" { index += 1 }
            case "\"", "'":
                index = skipString(quote: scalar)
                atLineStart = false
            case "[" where atLineStart && depth == 0:
                if let finding = headerProblem(scalars, after: index, line: line, lineStart: lineStart) {
                    return finding
                }
                index += 1
                atLineStart = false
            case "[", "{":
                depth += 1
                index += 1
                atLineStart = false
            case "]", "}":
                depth = max(0, depth - 1)
                index += 1
                atLineStart = false
            default:
                index += 1
                atLineStart = false
            }
        }
        return nil
    }

    /// What toml++ does after a header's "[": skips blanks, takes a second "["
    /// only right after the first (`[ [` is its own error), skips blanks, and then
    /// needs a key, "]" (its own error) or the end of the text.
    private static func headerProblem(
        _ scalars: [Unicode.Scalar], after open: Int, line: Int, lineStart: Int
    ) -> Finding? {
        var position = open + 1
        func skipBlanks() -> Bool {
            let start = position
            while position < scalars.count && (scalars[position] == " " || scalars[position] == "\t") { position += 1 }
            return position > start
        }
        let blank = skipBlanks()
        if position < scalars.count && scalars[position] == "[" {
            if blank { return nil }
            position += 1
            _ = skipBlanks()
        }
        guard position < scalars.count else { return nil }
        let found = scalars[position]
        let isKeyStart = (found.isASCII && (found.properties.isAlphabetic || ("0"..."9").contains(found)))
            || found == "_" || found == "-" || found == "\"" || found == "'" || found == "]"
        if isKeyStart { return nil }
        return Finding(line: line, column: position - lineStart + 1, found: found)
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}

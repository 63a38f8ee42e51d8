/// Finds the line of a table or key in TOML text, because the TOML library reports
/// positions only for syntax errors. Best effort: plain `[a.b]` headers and
/// `key = …` lines; anything fancier (dotted keys, inline tables) falls back to
/// the TOML path alone.
struct SourceLocator {
    private let lines: [Substring]

    init(_ text: String) {
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    /// The 1-based line of `key` in table `table` (e.g. `["keys", "dev-team"]`), or
    /// of the table's header when `key` is nil.
    func line(table: [String], key: String?) -> Int? {
        var current: [String] = []
        var headerLine: Int?
        for (index, raw) in lines.enumerated() {
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("[") {
                current = Self.headerPath(line)
                if current == table {
                    headerLine = index + 1
                    if key == nil { return headerLine }
                }
                continue
            }
            guard let key, current == table, let found = Self.keyName(line), found == key else { continue }
            return index + 1
        }
        return headerLine
    }

    private static func headerPath(_ line: Substring) -> [String] {
        let body = line.drop { $0 == "[" }.prefix { $0 != "]" }
        return body.split(separator: ".").map { part in
            part.trimmingCharacters(in: " \t\"'")
        }
    }

    private static func keyName(_ line: Substring) -> String? {
        guard let equals = line.firstIndex(of: "=") else { return nil }
        let name = line[..<equals].trimmingCharacters(in: " \t\"'")
        return name.isEmpty ? nil : name
    }
}

private extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var slice = Substring(self)
        while let first = slice.first, chars.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, chars.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}

/// Finds the line of a table or key in TOML text, because the TOML library reports
/// positions only for syntax errors. Best effort: plain `[a.b]` headers and
/// `key = …` lines; anything fancier (dotted keys, inline tables) falls back to
/// the TOML path alone.
struct SourceLocator {
    /// First line of each table header, by table path.
    private var headers: [[String]: Int] = [:]
    /// First line of each `key = …`, by table path and key.
    private var keys: [[String]: Int] = [:]

    /// One pass over the text: a configuration with thousands of keys and hooks is
    /// located in linear time (each lookup is then a dictionary access).
    init(_ text: String) {
        var current: [String] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("[") {
                current = Self.headerPath(line)
                if headers[current] == nil { headers[current] = index + 1 }
                continue
            }
            guard let name = Self.keyName(line) else { continue }
            let path = current + [name]
            if keys[path] == nil { keys[path] = index + 1 }
        }
    }

    /// The 1-based line of `key` in table `table` (e.g. `["keys", "dev-team"]`), or
    /// of the table's header when `key` is nil or not found.
    func line(table: [String], key: String?) -> Int? {
        if let key, let line = keys[table + [key]] { return line }
        return headers[table]
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

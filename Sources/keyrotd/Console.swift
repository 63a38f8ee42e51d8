import Foundation
import KeyRotation
import KeyRotationAdapters

/// Everything the CLI prints for people goes through here or `TextTable`, which
/// escape control characters (`TerminalText`): key and workspace names, findings
/// and errors carry text from the provider or from hooks.
enum Console {
    static func error(_ line: String) {
        StandardError.write(TerminalText.escaped(line) + "\n")
    }

    /// One line on stdout.
    static func line(_ text: String) {
        print(TerminalText.escaped(text))
    }

    /// Stable JSON: sorted keys, ISO 8601 times in UTC with milliseconds.
    static func printJSON<T: Encodable>(_ value: T) throws {
        print(String(decoding: try Timestamp.stableJSONEncoder().encode(value), as: UTF8.self))
    }
}

/// A plain left-aligned text table, columns two spaces apart.
struct TextTable {
    private var rows: [[String]]

    init(_ header: [String]) {
        rows = [header]
    }

    mutating func add(_ row: [String]) {
        rows.append(row.map(TerminalText.escaped))
    }

    func render() -> String {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

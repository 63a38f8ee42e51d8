import Foundation
import KeyRotation
import KeyRotationAdapters

enum Console {
    static func error(_ line: String) {
        StandardError.write(line + "\n")
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
        rows.append(row)
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

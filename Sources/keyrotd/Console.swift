import Foundation
import KeyRotation

enum Console {
    static func error(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Stable JSON: sorted keys, ISO 8601 times in UTC with milliseconds.
    static func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamp.format(date))
        }
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
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

enum Human {
    /// "41d 3h", "5h 12min", "40s": the largest unit and the next one down when it is not zero.
    static func span(seconds: Int64) -> String {
        let units: [(String, Int64)] = [("d", 86400), ("h", 3600), ("min", 60), ("s", 1)]
        let rest = max(0, seconds)
        guard let first = units.firstIndex(where: { rest >= $0.1 }) else { return "0s" }
        let (name, size) = units[first]
        var text = "\(rest / size)\(name)"
        if first + 1 < units.count {
            let (nextName, nextSize) = units[first + 1]
            let next = (rest % size) / nextSize
            if next > 0 { text += " \(next)\(nextName)" }
        }
        return text
    }

    static func when(_ date: Date, now: Date) -> String {
        let seconds = Int64(date.timeIntervalSince(now).rounded())
        if seconds >= 0 { return "in " + span(seconds: seconds) }
        return "overdue " + span(seconds: -seconds)
    }
}

/// Text from outside keyrotd (provider key and workspace names, hook output,
/// provider error messages) made safe to print on a terminal or in a log line.
///
/// A name like `"prod\u{1b}]0;owned\u{7}"` or a hook's stderr could otherwise
/// move the cursor, rewrite the window title, hide earlier lines, or forge a log
/// line with a newline. Everything that is not printable is shown as an escape
/// instead: `\\` for a backslash (so an escape in the output is always ours), `\n`,
/// `\r`, `\t`, `\xNN` for the other C0 controls and DEL, and `\u{NNNN}` for C1
/// controls and the bidirectional overrides that reorder what a reader sees
/// ("Trojan Source"). Printable text, including non-ASCII letters, is unchanged.
public enum TerminalText {
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += scalar.value < 0x80
                    ? "\\x" + (hex.count < 2 ? "0" + hex : hex)
                    : "\\u{" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex + "}"
            }
        }
        return out
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x5C: true  // backslash: escapes stay unambiguous
        case 0x00...0x1F, 0x7F...0x9F: true  // C0, DEL, C1
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true  // bidi marks, embeddings, overrides, isolates
        case 0x2028, 0x2029: true  // line and paragraph separators
        default: false
        }
    }
}

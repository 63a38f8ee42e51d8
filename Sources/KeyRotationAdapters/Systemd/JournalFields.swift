import Logging

/// How one log event becomes journal fields: the pure half of `JournalLogHandler`.
///
/// Contract (the audit trail is queried by these names, e.g.
/// `journalctl -u keyrotd KEYROTD_KEY=dev-team`):
/// - `MESSAGE=` the message; `PRIORITY=` the syslog level (trace/debug 7, info 6,
///   notice 5, warning 4, error 3, critical 2); `SYSLOG_IDENTIFIER=` the identifier.
/// - Metadata key `k` becomes `KEYROTD_` + `k` in upper case with every character
///   outside `[A-Z0-9_]` replaced by `_`, cut to 64 characters: `key`, `event`,
///   `key_id`, `old_key_id`, `generation`, `error`, `hook`, `stream` become
///   `KEYROTD_KEY` … `KEYROTD_STREAM`.
/// - The hook runner's lines carry `hook`, and their `event` is the hook's event
///   (deploy, retire, or an alert event), not an audit event: with `hook` present,
///   `event` becomes `KEYROTD_HOOK_EVENT`, and a line that also has `stream` (the
///   hook's own output) gets `KEYROTD_EVENT=hook-output`.
/// - `MESSAGE_ID=` is set when `KEYROTD_EVENT` names an event `MessageID` knows.
/// - Values are written as they are; newlines are kept (`sd_journal_sendv` sends such
///   fields in the journal's binary-safe form).
/// - Every name produced is valid for journald (`isValidFieldName`); journald would
///   otherwise drop the field silently.
/// - Order: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, MESSAGE_ID, the synthesized
///   KEYROTD_EVENT, metadata sorted by key, then CODE_FILE, CODE_LINE, CODE_FUNC.
enum JournalFields {
    /// The event name of the hook runner's output lines.
    static let hookOutputEvent = "hook-output"

    /// Where the log call was made; nil fields are left out.
    struct Location: Equatable {
        var file: String?
        var function: String?
        var line: UInt?
    }

    /// Every field of one event as `NAME=value` strings.
    static func fields(
        level: Logger.Level, message: String, metadata: Logger.Metadata, identifier: String,
        location: Location = Location()
    ) -> [String] {
        var head = ["MESSAGE=\(message)", "PRIORITY=\(priority(level))", "SYSLOG_IDENTIFIER=\(identifier)"]
        var body: [String] = []
        let fromHook = metadata["hook"] != nil
        var eventName: String?
        if fromHook, metadata["stream"] != nil {
            eventName = hookOutputEvent
            body.append("KEYROTD_EVENT=\(hookOutputEvent)")
        }
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            let name: String
            if key == "event" {
                if fromHook {
                    name = "KEYROTD_HOOK_EVENT"
                } else {
                    name = "KEYROTD_EVENT"
                    eventName = "\(value)"
                }
            } else {
                name = fieldName(forMetadataKey: key)
            }
            body.append("\(name)=\(value)")
        }
        if let eventName, let id = MessageID.forEvent(eventName) {
            head.append("MESSAGE_ID=\(id)")
        }
        if let file = location.file { body.append("CODE_FILE=\(file)") }
        if let line = location.line { body.append("CODE_LINE=\(line)") }
        if let function = location.function { body.append("CODE_FUNC=\(function)") }
        return head + body
    }

    /// The syslog priority journald files a swift-log level under.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// `KEYROTD_` + `key` upper-cased, characters outside `[A-Z0-9_]` as `_`, at most
    /// 64 characters; always a valid field name.
    static func fieldName(forMetadataKey key: String) -> String {
        var name = "KEYROTD_"
        for scalar in key.unicodeScalars {
            guard name.utf8.count < maximumFieldNameLength else { break }
            switch scalar {
            case "A"..."Z", "0"..."9", "_": name.unicodeScalars.append(scalar)
            case "a"..."z": name.unicodeScalars.append(Unicode.Scalar(scalar.value - 32) ?? "_")
            default: name.unicodeScalars.append("_")
            }
        }
        return name
    }

    static let maximumFieldNameLength = 64

    /// What journald accepts as a field name from a client: 1–64 characters of
    /// `[A-Z0-9_]`, not starting with `_` (trusted fields) or a digit.
    static func isValidFieldName<S: StringProtocol>(_ name: S) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= maximumFieldNameLength,
            first != UInt8(ascii: "_"), !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first)
        else { return false }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }
}

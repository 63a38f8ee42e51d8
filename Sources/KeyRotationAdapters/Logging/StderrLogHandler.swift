import Foundation
import KeyRotation
import Logging
import Synchronization

/// Readable log lines on stderr, for a terminal, a test, or a service without a
/// journal: `LEVEL message key=value ...`, metadata sorted by key, one line per
/// event (newlines and other control characters escaped, `TerminalText`).
public struct StderrLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String
    /// Whole lines are written with one write(2), so concurrent events do not interleave.
    private static let lock = Mutex(())

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        var line = "\(Self.tag(event.level)) \(Self.escape("\(event.message)"))"
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            line += " \(key)=\(Self.quote(Self.escape("\(value)")))"
        }
        line += "\n"
        Self.lock.withLock { _ in
            StandardError.write(line)
        }
    }

    static func tag(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "trace"
        case .debug: "debug"
        case .info: "info"
        case .notice: "notice"
        case .warning: "warning"
        case .error: "error"
        case .critical: "critical"
        }
    }

    /// One event is one line, and nothing in it can drive the terminal.
    static func escape(_ text: String) -> String {
        TerminalText.escaped(text)
    }

    static func quote(_ text: String) -> String {
        text.contains(" ") || text.isEmpty ? "\"\(text.replacingOccurrences(of: "\"", with: "\\\""))\"" : text
    }
}

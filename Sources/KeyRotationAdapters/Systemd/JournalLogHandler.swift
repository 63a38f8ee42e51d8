import CSystemd
import Glibc
import Logging

/// Writes each log event to the systemd journal as one structured entry
/// (`sd_journal_sendv`), with the fields `JournalFields` describes: the audit trail of
/// a key is `journalctl -u keyrotd KEYROTD_KEY=<name>`, and `journalctl -x` explains
/// each event from `systemd/keyrotd.catalog` by its `MESSAGE_ID`.
///
/// A value type, as swift-log requires: copies have their own level and metadata.
/// Use it only when the journal is there (`LogDestination` decides): `sd_journal_sendv`
/// reports success when no journal socket exists, so events would vanish silently.
/// When a send fails (e.g. the socket refuses), the event goes to stderr in
/// `StderrLogHandler`'s format instead of being lost.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    /// The logger's label (kept for `StderrLogHandler` when a send fails).
    public let label: String
    /// `SYSLOG_IDENTIFIER=`, the name `journalctl -t` selects and shows.
    public let identifier: String

    public init(label: String, identifier: String = "keyrotd") {
        self.label = label
        self.identifier = identifier
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let fields = JournalFields.fields(
            level: event.level, message: "\(event.message)", metadata: merged, identifier: identifier,
            location: .init(file: event.file, function: event.function, line: event.line))
        if Self.send(fields) < 0 {
            var fallback = StderrLogHandler(label: label)
            fallback.logLevel = logLevel
            fallback.metadata = metadata
            fallback.log(event: event)
        }
    }

    /// Sends one entry; `sd_journal_sendv`'s result (0, or a negative errno).
    static func send(_ fields: [String]) -> Int32 {
        withIOVecs(fields) { iovecs in
            sd_journal_sendv(iovecs.baseAddress, Int32(clamping: iovecs.count))
        }
    }

    /// Calls `body` with one iovec per field, in order, each pointing into one buffer
    /// that lives until `body` returns (and no longer).
    static func withIOVecs<Result>(_ fields: [String], _ body: (UnsafeBufferPointer<iovec>) -> Result) -> Result {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(fields.reduce(0) { $0 + $1.utf8.count })
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(fields.count)
        for field in fields {
            let start = buffer.count
            buffer.append(contentsOf: field.utf8)
            ranges.append(start..<buffer.count)
        }
        return buffer.withUnsafeMutableBytes { bytes in
            let iovecs = ranges.map { range in
                iovec(iov_base: bytes.baseAddress.map { $0 + range.lowerBound }, iov_len: range.count)
            }
            return iovecs.withUnsafeBufferPointer(body)
        }
    }
}

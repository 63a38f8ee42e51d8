import Glibc
import Logging

/// Where the daemon's log goes: the journal, as structured entries, when stderr is
/// connected to it; otherwise stderr as readable lines (`StderrLogHandler`).
public enum LogDestination {
    /// A `JournalLogHandler` when `journalIsConnected(environment:)`, else a
    /// `StderrLogHandler`. For `LoggingSystem.bootstrap` in `main`, never in a library.
    /// `identifier` is the journal's `SYSLOG_IDENTIFIER=`.
    public static func makeHandler(
        label: String, environment: [String: String], identifier: String = "keyrotd"
    ) -> any LogHandler {
        journalIsConnected(environment: environment)
            ? JournalLogHandler(label: label, identifier: identifier) : StderrLogHandler(label: label)
    }

    /// True when this process's stderr is the journal stream systemd set up for it:
    /// `JOURNAL_STREAM` ("<device>:<inode>", decimal) names stderr's st_dev and st_ino,
    /// as systemd.exec(5) documents. A redirected stderr (`2>file`, a pipe) or an
    /// inherited `JOURNAL_STREAM` from a parent service then correctly gives false.
    public static func journalIsConnected(environment: [String: String]) -> Bool {
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return false }
        return journalIsConnected(
            journalStream: environment["JOURNAL_STREAM"], stderrDevice: UInt64(info.st_dev),
            stderrInode: UInt64(info.st_ino))
    }

    /// The decision alone: `journalStream` is exactly two unsigned decimals separated
    /// by a colon, equal to the device and inode.
    static func journalIsConnected(journalStream: String?, stderrDevice: UInt64, stderrInode: UInt64) -> Bool {
        guard let journalStream else { return false }
        let parts = journalStream.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { (48...57).contains($0) } }),
            let device = UInt64(parts[0]), let inode = UInt64(parts[1])
        else { return false }
        return device == stderrDevice && inode == stderrInode
    }
}

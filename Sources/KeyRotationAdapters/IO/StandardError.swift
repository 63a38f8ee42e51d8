#if canImport(Glibc)
import Glibc
#endif

/// Writes to stderr that can never bring keyrotd down. Foundation's
/// `FileHandle.write(_:)` traps when the write fails, so a full disk or a reader
/// gone from a pipe behind stderr would crash the daemon at its next log line;
/// here a failed write is dropped (the line is lost, nothing else).
public enum StandardError {
    public static func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        bytes.withUnsafeMutableBytes { buffer in
            while offset < buffer.count {
                let written = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }
}

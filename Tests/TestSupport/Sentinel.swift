import Foundation
import Glibc

/// A random sentinel the local server puts at the start of every secret it issues
/// (`secret_prefix`): wherever it shows, a secret leaked. Nothing here prints it:
/// a find is reported by place, with the text around it masked.
public struct Sentinel: Sendable {
    public init() {}

    public let text = "SENTINEL-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(20)

    public func occurs(in bytes: [UInt8]) -> Bool {
        Data(bytes).range(of: Data(text.utf8)) != nil
    }

    /// Appends the sentinel to the file `KEYROTD_TEST_SENTINELS` names, if any:
    /// `scripts/test` then checks that the tests' whole output never shows it.
    public func record() {
        guard let path = ProcessInfo.processInfo.environment["KEYROTD_TEST_SENTINELS"], !path.isEmpty else { return }
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        let line = Array((text + "\n").utf8)
        _ = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }

    /// `text` with the sentinel and the secret characters after it replaced.
    public func masked(_ subject: String) -> String {
        var result = ""
        var rest = Substring(subject)
        while let found = rest.range(of: text) {
            result += rest[..<found.lowerBound] + "<sentinel…>"
            rest = rest[found.upperBound...].drop { $0.isASCII && ($0.isLetter || $0.isNumber) }
        }
        return result + rest
    }
}

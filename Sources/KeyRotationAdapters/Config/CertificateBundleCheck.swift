import Foundation

/// `ca_file`: a readable PEM bundle with at least one complete certificate. A
/// superficial check (libcurl parses it for real at the first connection), but
/// enough to catch a wrong path, a DER file, a key or an empty file at check-config.
enum CertificateBundleCheck {
    static let begin = "-----BEGIN CERTIFICATE-----"
    static let end = "-----END CERTIFICATE-----"

    /// Why `path` is not a usable CA bundle, or nil.
    static func problem(path: String) -> String? {
        guard let info = FileIO.status(path: path, following: true) else { return "\(path) does not exist" }
        if !info.isRegularFile { return "\(path) is not a regular file" }
        let bytes: [UInt8]
        do {
            bytes = try FileIO.readAll(path: path, limit: 16 << 20)
        } catch {
            return "cannot read \(path): \(error)"
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let first = text.range(of: begin), text.range(of: end, range: first.upperBound..<text.endIndex) != nil else {
            return "\(path) holds no PEM certificate (\(begin) … \(end))"
        }
        if text.contains("PRIVATE KEY-----") {
            return "\(path) holds a private key; a CA bundle needs only certificates"
        }
        return nil
    }
}

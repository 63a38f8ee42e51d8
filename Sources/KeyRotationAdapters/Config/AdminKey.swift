import Foundation
import KeyRotation

/// Where a provider's admin key was found, for the start-up log line (never the key).
public enum AdminKeyOrigin: Sendable, Equatable {
    case credential(path: String)
    case file(path: String)
    /// `MISTRAL_ADMIN_KEY`: interactive use only; the daemon warns.
    case environment
}

public struct AdminKeyError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

public enum AdminKey {
    /// Reads a provider's admin key: the configured credential (from
    /// `$CREDENTIALS_DIRECTORY`) or file, else `MISTRAL_ADMIN_KEY` from the
    /// environment. Surrounding whitespace is dropped; an empty key is an error.
    public static func resolve(
        _ provider: ProviderSettings, environment: [String: String]
    ) throws(AdminKeyError) -> (Secret, AdminKeyOrigin) {
        var path: String?
        var origin: AdminKeyOrigin?
        switch provider.adminKey {
        case .file(let file):
            path = file
            origin = .file(path: file)
        case .credential(let name):
            if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty {
                path = "\(directory)/\(name)"
                origin = .credential(path: "\(directory)/\(name)")
            }
        }
        if let path, let origin {
            if case .file = origin, let status = FileIO.status(path: path), status.mode & 0o077 != 0 {
                throw AdminKeyError(description: "admin key file \(path) is accessible by group or others; chmod 600 it")
            }
            let bytes: [UInt8]
            do {
                bytes = try FileIO.readAll(path: path, limit: 64 << 10)
            } catch {
                throw AdminKeyError(description: "cannot read the admin key for provider \(provider.name) from \(path): \(error)")
            }
            let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { throw AdminKeyError(description: "the admin key file \(path) is empty") }
            return (Secret(text), origin)
        }
        if let key = environment["MISTRAL_ADMIN_KEY"]?.trimmingCharacters(in: .whitespacesAndNewlines), !key.isEmpty {
            return (Secret(key), .environment)
        }
        throw AdminKeyError(description: "no admin key for provider \(provider.name): $CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=) and MISTRAL_ADMIN_KEY is not set")
    }
}

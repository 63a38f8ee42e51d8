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
    /// Whoever can change a secret file or a directory above it chooses the
    /// secret keyrotd uses, and its owner can read it.
    static func stake(_ what: String) -> String { "whoever can change it can read or substitute the \(what)" }

    /// Why the secret file at `path` (`admin_key_file`, a proxy's credentials file)
    /// is not to be trusted, or nil: its real path must pass `PathTrust` (owner
    /// root or keyrotd's user, every directory above writable by nobody else), it
    /// must not itself be a symbolic link (it is read with O_NOFOLLOW), and no one
    /// else may read it (0600 or stricter). `what` names the secret in messages.
    static func fileProblem(_ path: String, what: String = "admin key") -> String? {
        let verified: PathTrust.Verified
        do throws(PathTrust.Refusal) {
            verified = try PathTrust.verify(path, finalLink: .refuse)
        } catch {
            return error.message(for: "\(what) file", path: path, stake: stake(what))
        }
        if !verified.isRegularFile { return "\(what) file \(path) is not a regular file" }
        if verified.mode & 0o077 != 0 {
            return "\(path) is accessible by group or others (mode \(PathTrust.octal(verified.mode))); chmod 600 it"
        }
        return nil
    }

    /// A secret file's text with surrounding whitespace dropped, read without
    /// following a symbolic link; with `checkingTrust`, only once `fileProblem`
    /// passes (a systemd credential needs no check: systemd made it private).
    static func readSecretFile(_ path: String, what: String, shown: String, checkingTrust: Bool) throws(AdminKeyError) -> String {
        if checkingTrust, let problem = fileProblem(path, what: what) {
            throw AdminKeyError(description: problem)
        }
        let bytes: [UInt8]
        do {
            bytes = try FileIO.readAll(path: path, limit: 64 << 10, followingLinks: false)
        } catch {
            throw AdminKeyError(description: "cannot read the \(what) from \(shown): \(error)")
        }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Reads a provider's admin key: the configured credential (from
    /// `$CREDENTIALS_DIRECTORY`) or file, else `MISTRAL_ADMIN_KEY` from the
    /// environment. Surrounding whitespace is dropped; an empty key is an error.
    public static func resolve(
        _ provider: ProviderSettings, environment: [String: String]
    ) throws(AdminKeyError) -> (Secret, AdminKeyOrigin) {
        var path: String?
        var origin: AdminKeyOrigin?
        // How messages name the file: a credential's name is never repeated (a
        // key pasted there by mistake would be printed).
        var shown = ""
        switch provider.adminKey {
        case .file(let file):
            path = file
            origin = .file(path: file)
            shown = file
        case .credential(let name):
            if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty {
                path = "\(directory)/\(name)"
                origin = .credential(path: "\(directory)/\(name)")
                shown = "the credential admin_key_credential names, in \(directory)"
            }
        }
        if let path, let origin {
            var isFile = false
            if case .file = origin { isFile = true }
            let text = try readSecretFile(path, what: "admin key", shown: shown, checkingTrust: isFile)
            guard !text.isEmpty else { throw AdminKeyError(description: "the admin key in \(shown) is empty") }
            return (Secret(text), origin)
        }
        if let key = environment["MISTRAL_ADMIN_KEY"]?.trimmingCharacters(in: .whitespacesAndNewlines), !key.isEmpty {
            return (Secret(key), .environment)
        }
        throw AdminKeyError(description: "no admin key for provider \(provider.name): $CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=) and MISTRAL_ADMIN_KEY is not set")
    }
}

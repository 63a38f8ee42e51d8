#if canImport(Glibc)
import Glibc
#endif

/// The rules a hook must pass before it may receive a secret: the same at
/// `check-config`, at start and reload, and again at every spawn.
enum HookTrust {
    /// Why a hook may not run.
    enum Problem: Error, Sendable, Equatable {
        /// Missing, not a regular file, not executable: `reason` follows "hook <path>".
        case notExecutable(reason: String)
        /// Someone besides root and keyrotd's user could change what runs: a full sentence.
        case untrusted(message: String)

        /// The sentence for a configuration problem or a hook failure.
        func message(path: String) -> String {
            switch self {
            case .notExecutable(let reason): "hook \(path) \(reason)"
            case .untrusted(let message): message
            }
        }
    }

    static let stake = "whoever can change it chooses what runs and receives every new secret"

    /// The hook's real path, every component of which `PathTrust` verified: the
    /// path to execute. Relative paths are refused.
    static func verify(_ path: String) throws(Problem) -> String {
        guard path.hasPrefix("/") else { throw .notExecutable(reason: "is not an absolute path") }
        let verified: PathTrust.Verified
        do throws(PathTrust.Refusal) {
            verified = try PathTrust.verify(path)
        } catch {
            switch error.reason {
            case .missing where error.component == path:
                throw .notExecutable(reason: "does not exist")
            case .missing:
                throw .notExecutable(reason: "does not exist (\(error.component) is missing)")
            case .notDirectory:
                throw .notExecutable(reason: "does not exist (\(error.component) is not a directory)")
            default:
                throw .untrusted(message: error.message(for: "hook", path: path, stake: stake))
            }
        }
        guard verified.isRegularFile else { throw .notExecutable(reason: "is not a regular file") }
        guard access(verified.realPath, X_OK) == 0 else { throw .notExecutable(reason: "is not executable (chmod +x)") }
        return verified.realPath
    }
}

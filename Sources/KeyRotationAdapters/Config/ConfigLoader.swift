import Foundation
import KeyRotation
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A configuration read from disk: the parser's verdict plus the checks only the
/// real file system can answer (hooks exist and are safe to run, secrets are
/// readable and private).
public struct LoadedConfiguration: Sendable {
    public var path: String
    /// nil when any problem is an error.
    public var configuration: Configuration?
    /// `[daemon]` as far as it could be read, even when other parts are wrong.
    public var daemon: DaemonSettings?
    public var problems: [ConfigProblem]

    public var errors: [ConfigProblem] { problems.filter { $0.severity == .error } }
    public var warnings: [ConfigProblem] { problems.filter { $0.severity == .warning } }
}

public enum ConfigLoader {
    public static let defaultPath = "/etc/keyrotd/keyrotd.toml"

    /// Whoever can change the configuration chooses where the admin key is sent.
    static let configurationStake = "whoever can change it can point base_url at themselves and receive the admin key"

    public static func load(path: String, environment: [String: String]) -> LoadedConfiguration {
        let text: String
        switch readTrustedText(path: path, stake: configurationStake) {
        case .success(let read): text = read
        case .failure(let problem):
            return LoadedConfiguration(path: path, configuration: nil, daemon: nil, problems: [problem])
        }
        let parsed = ConfigParser.parse(text)
        var problems = parsed.problems
        for check in parsed.fileChecks {
            if let problem = FileChecker.problem(with: check, environment: environment) {
                problems.append(problem)
            }
        }
        let failed = problems.contains { $0.severity == .error }
        return LoadedConfiguration(
            path: path, configuration: failed ? nil : parsed.configuration, daemon: parsed.daemon, problems: problems)
    }
}

extension ConfigLoader {
    /// Reads a configuration file whose whole path only root or our user can change
    /// (`PathTrust`), as UTF-8 text of at most 1 MiB. `stake` says in a refusal what
    /// whoever else could change it would gain.
    public static func readTrustedText(path: String, stake: String) -> Result<String, ConfigProblem> {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var readPath = path
        do throws(PathTrust.Refusal) {
            let verified = try PathTrust.verify(absolute)
            guard verified.isRegularFile else { return .failure(ConfigProblem(.file, "the configuration file is not a regular file")) }
            readPath = verified.realPath
        } catch {
            // A missing file is reported by the read below, with the system's words.
            if error.reason != .missing {
                return .failure(ConfigProblem(.file, error.message(for: "configuration file", path: absolute, stake: stake)))
            }
        }
        do {
            let bytes = try FileIO.readAll(path: readPath, limit: 1 << 20)
            guard let decoded = String(validating: bytes, as: UTF8.self) else {
                return .failure(ConfigProblem(.file, "is not valid UTF-8"))
            }
            return .success(decoded)
        } catch {
            return .failure(ConfigProblem(.file, "cannot read: \(error)"))
        }
    }
}

/// The file-system half of configuration validation.
public enum FileChecker {
    public static func problem(with check: FileCheck, environment: [String: String]) -> ConfigProblem? {
        func problem(_ message: String, _ severity: ConfigProblem.Severity = .error) -> ConfigProblem {
            ConfigProblem(check.location, path: check.tomlPath, message, severity: severity)
        }
        switch check.kind {
        case .hook:
            do throws(HookTrust.Problem) {
                _ = try HookTrust.verify(check.path)
                return nil
            } catch {
                return problem(error.message(path: check.path))
            }
        case .secretFile(let secret):
            if let refusal = AdminKey.fileProblem(check.path, what: secret) { return problem(refusal) }
            return secretProblem(path: check.path, shownAs: check.path, problem)
        case .credential:
            // The credential's name is never repeated: a key pasted there by
            // mistake would otherwise be printed.
            guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else {
                if environment["MISTRAL_ADMIN_KEY"]?.isEmpty == false {
                    return problem("the credential is not available outside the service; using MISTRAL_ADMIN_KEY from the environment (interactive use only)", .warning)
                }
                return problem("the credential can only be checked inside the service ($CREDENTIALS_DIRECTORY is not set; set MISTRAL_ADMIN_KEY to use keyrotd interactively)", .warning)
            }
            return secretProblem(
                path: "\(directory)/\(check.path)", shownAs: "the credential named here, in \(directory),", problem)
        case .certificateBundle:
            return CertificateBundleCheck.problem(path: check.path).map { problem($0) }
        }
    }

    /// A secret file must be readable (not through a symbolic link) and non-empty;
    /// `shownAs` names it in messages.
    private static func secretProblem(
        path: String, shownAs shown: String, _ problem: (String, ConfigProblem.Severity) -> ConfigProblem
    ) -> ConfigProblem? {
        guard let info = FileIO.status(path: path) else {
            return problem("\(shown) does not exist", .error)
        }
        if !info.isRegularFile { return problem("\(shown) is not a regular file", .error) }
        do {
            let bytes = try FileIO.readAll(path: path, limit: 64 << 10, followingLinks: false)
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
                return problem("\(shown) is empty", .error)
            }
        } catch {
            return problem("cannot read \(shown): \(error)", .error)
        }
        return nil
    }
}

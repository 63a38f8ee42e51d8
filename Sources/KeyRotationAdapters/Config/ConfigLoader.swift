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

    public static func load(path: String, environment: [String: String]) -> LoadedConfiguration {
        let text: String
        do {
            let bytes = try FileIO.readAll(path: path, limit: 1 << 20)
            guard let decoded = String(validating: bytes, as: UTF8.self) else {
                return LoadedConfiguration(
                    path: path, configuration: nil, daemon: nil, problems: [ConfigProblem(.file, "is not valid UTF-8")])
            }
            text = decoded
        } catch {
            return LoadedConfiguration(
                path: path, configuration: nil, daemon: nil, problems: [ConfigProblem(.file, "cannot read: \(error)")])
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

/// The file-system half of configuration validation.
enum FileChecker {
    static func problem(with check: FileCheck, environment: [String: String]) -> ConfigProblem? {
        func problem(_ message: String, _ severity: ConfigProblem.Severity = .error) -> ConfigProblem {
            ConfigProblem(check.location, path: check.tomlPath, message, severity: severity)
        }
        switch check.kind {
        case .hook:
            guard let info = FileIO.status(path: check.path, following: true) else {
                return problem("hook \(check.path) does not exist")
            }
            if !info.isRegularFile { return problem("hook \(check.path) is not a regular file") }
            if info.mode & 0o022 != 0 {
                return problem("hook \(check.path) is writable by group or others (mode \(octal(info.mode))): anyone who can edit it receives every new secret; chmod go-w it")
            }
            if info.owner != 0 && info.owner != geteuid() {
                return problem("hook \(check.path) is owned by uid \(info.owner), neither root nor keyrotd's user: its owner receives every new secret")
            }
            let directory = (check.path as NSString).deletingLastPathComponent
            if let parent = FileIO.status(path: directory), parent.mode & 0o022 != 0, parent.mode & 0o1000 == 0 {
                return problem("hook \(check.path) is in \(directory), which group or others may write (mode \(octal(parent.mode))): they could replace the hook")
            }
            if access(check.path, X_OK) != 0 { return problem("hook \(check.path) is not executable (chmod +x)") }
            return nil
        case .secretFile:
            return secretProblem(path: check.path, problem)
        case .credential(let name):
            guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else {
                if environment["MISTRAL_ADMIN_KEY"]?.isEmpty == false {
                    return problem("credential \"\(name)\" is not available outside the service; using MISTRAL_ADMIN_KEY from the environment (interactive use only)", .warning)
                }
                return problem("credential \"\(name)\" can only be checked inside the service ($CREDENTIALS_DIRECTORY is not set; set MISTRAL_ADMIN_KEY to use keyrotd interactively)", .warning)
            }
            return secretProblem(path: "\(directory)/\(name)", problem, checkMode: false)
        case .certificateBundle:
            return CertificateBundleCheck.problem(path: check.path).map { problem($0) }
        }
    }

    /// A secret file must be readable, non-empty and, unless systemd hands it over
    /// (credentials are already private to the service), 0600 or stricter.
    private static func secretProblem(
        path: String, _ problem: (String, ConfigProblem.Severity) -> ConfigProblem, checkMode: Bool = true
    ) -> ConfigProblem? {
        guard let info = FileIO.status(path: path) else {
            return problem("\(path) does not exist", .error)
        }
        if !info.isRegularFile { return problem("\(path) is not a regular file", .error) }
        if checkMode, info.mode & 0o077 != 0 {
            return problem("\(path) is accessible by group or others (mode \(octal(info.mode))); chmod 600 it", .error)
        }
        do {
            let bytes = try FileIO.readAll(path: path, limit: 64 << 10)
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
                return problem("\(path) is empty", .error)
            }
        } catch {
            return problem("cannot read \(path): \(error)", .error)
        }
        return nil
    }

    private static func octal(_ mode: UInt32) -> String {
        "0" + String(mode & 0o7777, radix: 8)
    }
}

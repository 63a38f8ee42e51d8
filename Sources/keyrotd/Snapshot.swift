import ArgumentParser
import Foundation
import KeyRotation
import KeyRotationAdapters

/// The configuration and state file as the read-only commands see them.
struct Snapshot {
    var configuration: Configuration?
    var statePath: String
    var document: StateDocument?

    /// A broken configuration is reported but does not stop `status`/`plan` (the
    /// state file alone still tells the story); a state file that fails to load
    /// does: exit 78 (77 if it is not readable by us), the file left as it was.
    static func load(configPath: String, statePath: String?) throws -> Snapshot {
        let environment = ProcessInfo.processInfo.environment
        let loaded = ConfigLoader.load(path: configPath, environment: environment)
        if loaded.configuration == nil {
            Console.error("warning: \(configPath) has \(loaded.errors.count) problem(s) (see keyrotd check-config); showing the state file alone")
        }
        let path = statePath
            ?? DaemonSettings.stateFile(configured: loaded.daemon?.stateFile, environment: environment)
        do {
            guard let (version, body) = try StateFile(path: path).load(maxSupportedVersion: StateDocument.schemaVersion, checkingJSON: false) else {
                return Snapshot(configuration: loaded.configuration, statePath: path, document: nil)
            }
            do {
                let document = try StateDocument.decode(body, version: version)
                return Snapshot(configuration: loaded.configuration, statePath: path, document: document)
            } catch {
                Console.error("state file \(path) has a valid checksum but its content does not decode (\(error)); it was left untouched")
                throw ExitCode.configurationError
            }
        } catch let error as StateFileError {
            Console.error(error.description)
            throw error.code == .permissionDenied ? ExitCode.permissionDenied : ExitCode.configurationError
        }
    }
}

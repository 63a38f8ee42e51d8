import ArgumentParser
import Foundation
import KeyRotation
import KeyRotationAdapters

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show each key's phase, current key, age, next rotation and last error.",
        discussion: "Reads the state file; works with the daemon stopped. --json output is stable (see README).")

    @OptionGroup var options: ReportOptions

    func run() throws {
        let snapshot = try Snapshot.load(configPath: options.config, statePath: options.state)
        let now = Date()
        let rows = Reports.status(configuration: snapshot.configuration, document: snapshot.document, now: now)
        if options.json {
            try Console.printJSON(StatusJSON(
                stateFile: snapshot.statePath, stateExists: snapshot.document != nil,
                instance: snapshot.configuration?.daemon.instance ?? snapshot.document?.instance, keys: rows))
            return
        }
        if snapshot.document == nil {
            print("No state yet at \(snapshot.statePath): keyrotd has not run, so no key has been created or adopted.")
        }
        var table = TextTable(["KEY", "PHASE", "KEY ID", "GEN", "AGE", "NEXT ROTATION", "TRIES", "LAST ERROR"])
        for row in rows {
            table.add([
                row.managed ? row.name : "\(row.name) (not configured)",
                row.phase + (row.revoking ? " (revoke)" : ""),
                row.keyID ?? "-",
                row.keyID == nil ? "-" : String(row.generation),
                row.ageSeconds.map { Human.span(seconds: $0) } ?? "-",
                row.nextRotation.map { Human.when($0, now: now) }
                    ?? row.retireAt.map { "old key deleted " + Human.when($0, now: now) } ?? "-",
                String(row.attempts),
                row.lastError.map { "\($0.code): \($0.message)" } ?? "-",
            ])
        }
        print(table.render(), terminator: "")
    }
}

struct StatusJSON: Encodable {
    var version = 1
    var stateFile: String
    var stateExists: Bool
    /// The deployment's name in provider key names: the configured one (which the
    /// daemon takes over at start), else the one the state file holds; null before
    /// the first start drew one.
    var instance: String?
    var keys: [KeyStatus]

    enum CodingKeys: String, CodingKey {
        case version, keys, instance
        case stateFile = "state_file"
        case stateExists = "state_exists"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(version, forKey: .version)
        try container.encode(stateFile, forKey: .stateFile)
        try container.encode(stateExists, forKey: .stateExists)
        try container.encode(instance, forKey: .instance)  // null, not absent
        try container.encode(keys, forKey: .keys)
    }
}

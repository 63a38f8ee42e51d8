import ArgumentParser
import Foundation
import KeyRotation
import KeyRotationAdapters

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the upcoming rotations and steps, soonest first.",
        discussion: "--json output is stable (see README).")

    @OptionGroup var options: ReportOptions

    func run() throws {
        let snapshot = try Snapshot.load(configPath: options.config, statePath: options.state)
        let now = Date()
        let plan = Reports.plan(configuration: snapshot.configuration, document: snapshot.document, now: now)
        if options.json {
            try Console.printJSON(PlanJSON(stateFile: snapshot.statePath, stateExists: snapshot.document != nil, rotations: plan))
            return
        }
        if snapshot.document == nil {
            print("No state yet at \(snapshot.statePath): every key starts when the daemon first runs.")
        }
        var table = TextTable(["WHEN", "KEY", "WHAT"])
        for entry in plan {
            let when = entry.at.map { Human.when($0, now: now) + " (\(Timestamp.format($0)))" } ?? "at daemon start"
            table.add([when, entry.key, entry.what])
        }
        print(table.render(), terminator: "")
    }
}

struct PlanJSON: Encodable {
    var version = 1
    var stateFile: String
    var stateExists: Bool
    var rotations: [PlannedRotation]

    enum CodingKeys: String, CodingKey {
        case version, rotations
        case stateFile = "state_file"
        case stateExists = "state_exists"
    }
}

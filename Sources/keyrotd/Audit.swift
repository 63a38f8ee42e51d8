import ArgumentParser
import Foundation
import KeyRotation
import KeyRotationAdapters

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "List every key the provider has, with findings, and spend against limit.",
        discussion: """
            The running daemon lists the provider's keys (all pages) with its admin key and \
            flags keys not managed here, orphans (keyrotd-named keys no state record knows), \
            keys unused for longer than [audit] stale_after, keys older than policy, and keys \
            expiring before their next rotation. --json output is stable (see README).
            """)

    @Flag(help: "Print JSON instead of tables.")
    var json = false
    @OptionGroup var daemon: SocketOptions

    func run() throws {
        let report = try Control.call(
            ControlRequest(command: .audit), socket: daemon.socketPath, expecting: AuditReport.self, timeout: .seconds(600))
        if json {
            try Console.printJSON(report)
            return
        }
        print(Self.render(report, now: Date()), terminator: "")
    }

    static func render(_ report: AuditReport, now: Date) -> String {
        var table = TextTable(["KEY ID", "NAME", "WORKSPACE", "CREATED", "LAST USED", "EXPIRES", "MANAGED AS", "FINDINGS"])
        for key in report.keys {
            table.add([
                key.id, key.name, key.workspaceName ?? key.workspaceID ?? "-",
                Human.span(seconds: max(0, Int64(now.timeIntervalSince(key.createdAt)))) + " ago",
                key.lastUsed.map { String(Timestamp.format($0).prefix(10)) } ?? "never",
                key.expiresOn.map { String(Timestamp.format($0).prefix(10)) } ?? "-",
                key.managedAs.map { name in key.role.map { "\(name) (\($0.rawValue))" } ?? name } ?? "-",
                key.findings.isEmpty ? "-" : key.findings.map(\.kind.rawValue).joined(separator: ","),
            ])
        }
        var text = "\(report.keys.count) provider key(s)\n" + table.render()
        let findings = report.findings
        text += "\n\(findings.count) finding(s)\n"
        for finding in findings {
            text += "  \(finding.kind.rawValue): \(TerminalText.escaped(finding.message))\n"
            if let remedy = finding.remedy { text += "      fix: \(TerminalText.escaped(remedy))\n" }
        }
        if let spend = report.spend {
            text += "\nspend this month\n"
            if spend.isEmpty { text += "  no monthly limit is set\n" }
            for figure in spend {
                let scope = figure.scope == .organization
                    ? "organisation" : "workspace \(TerminalText.escaped(figure.workspaceName ?? figure.workspaceID ?? "?"))"
                let currency = figure.currency.map { " \(TerminalText.escaped($0))" } ?? ""
                text += "  \(scope): \(String(format: "%.2f", figure.spent)) of \(String(format: "%.2f", figure.limit))\(currency) (\(String(format: "%.1f", figure.percent))%)\n"
            }
        } else if let error = report.spendError {
            text += "\nspend this month: could not be read (\(TerminalText.escaped(error)))\n"
        }
        return text
    }
}

struct DeleteOrphan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete an orphan: a keyrotd-named provider key that no state record knows.",
        discussion: """
            `keyrotd audit` names orphans. The daemon checks the key is keyrotd-named and unknown \
            to every state record before it deletes it; any other key is refused.
            """)

    @Argument(help: "The provider key id.")
    var keyID: String
    @OptionGroup var daemon: SocketOptions

    func run() throws {
        let deleted = try Control.call(
            ControlRequest(command: .deleteOrphan, keyID: keyID), socket: daemon.socketPath,
            expecting: DeletedOrphan.self, timeout: .seconds(120))
        Console.line("deleted \(deleted.keyID) (\(deleted.name))")
    }
}

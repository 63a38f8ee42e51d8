import ArgumentParser
import Foundation
import GatewayServer
import KeyRotation
import KeyRotationAdapters

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show roles, clients, month spend against budget, current limits and upstream key generations.",
        discussion: "Asks the running gateway over its admin socket (root or an admin_users member).")

    @OptionGroup var options: ConfigOptions

    @Option(help: ArgumentHelp("The gateway's admin socket (default: from the configuration).", valueName: "path"))
    var socket: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var path = socket
        if path == nil, case .success(let loaded) = GatewayConfigLoader.load(path: options.config, environment: environment) {
            path = loaded.adminSocket
        }
        let socketPath = path ?? "/run/keyrotd-gateway/admin.sock"
        let answer: (report: StatusReport, json: [UInt8])
        do throws(AdminClient.Failure) {
            answer = try await AdminClient(socketPath: socketPath).status()
        } catch {
            StandardError.write("keyrotd-gateway status: \(TerminalText.escaped(error.description))\n")
            throw ExitCode(error.exitCode)
        }
        if json {
            FileHandle.standardOutput.write(Data(answer.json + [0x0A]))
            return
        }
        let report = answer.report
        print(TerminalText.escaped("upstream \(report.upstream), month \(report.month), listening on \(report.listen.joined(separator: ", "))"))
        print("")
        print(pad(["ROLE", "KEY", "GEN", "SPENT", "BUDGET", "REQ/MIN LEFT", "TOK/MIN LEFT", "MODELS"]))
        for role in report.roles {
            let budget = role.monthlyBudget.map { String(format: "%.2f %@", $0, report.currency) } ?? "-"
            let spent = String(format: "%.6f", role.spent + role.reserved)
            let requests = role.requestsPerMinute.map { "\(role.requestsRemaining ?? $0)/\($0)" } ?? "-"
            let tokens = role.tokensPerMinute.map { "\(role.tokensRemaining ?? $0)/\($0)" } ?? "-"
            let generation = role.upstreamKeyGeneration.map(String.init) ?? (role.upstreamKeyID == nil ? "none" : "?")
            print(TerminalText.escaped(pad([
                role.name, role.upstreamKey, generation, spent, budget, requests, tokens, role.models.joined(separator: ","),
            ])))
        }
        print("")
        print(pad(["CLIENT", "ROLE", "AUTHENTICATION"]))
        for client in report.clients {
            print(TerminalText.escaped(pad([client.name, client.role, client.authentication])))
        }
    }

    private func pad(_ columns: [String]) -> String {
        let widths = [14, 14, 5, 12, 14, 14, 14, 0]
        return zip(columns, widths + Array(repeating: 0, count: max(0, columns.count - widths.count))).map { text, width in
            text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
        }.joined().trimmingCharacters(in: .whitespaces)
    }
}

import ArgumentParser
import Foundation
import GatewayServer
import KeyRotation
import KeyRotationAdapters

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration, its files and accounts.",
        discussion: "Prints every problem as file:line: path: message and exits 78, or a one-line summary and exits 0.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        switch GatewayConfigLoader.load(path: options.config, environment: ProcessInfo.processInfo.environment) {
        case .failure(let error):
            for problem in error.problems { StandardError.write(problem.formatted(file: options.config) + "\n") }
            let count = error.problems.filter { $0.severity == .error }.count
            StandardError.write("\(options.config): \(count) problem\(count == 1 ? "" : "s"); configuration rejected\n")
            throw ExitCode.configurationError
        case .success(let loaded):
            for warning in loaded.warnings { StandardError.write(warning.formatted(file: options.config) + "\n") }
            let configuration = loaded.configuration
            let roles = configuration.roles.keys.sorted().joined(separator: ", ")
            print(
                TerminalText.escaped(
                    "\(options.config): OK: \(configuration.roles.count) role\(configuration.roles.count == 1 ? "" : "s") (\(roles)), \(configuration.clients.count) client\(configuration.clients.count == 1 ? "" : "s"), listening on \(configuration.listeners.map(\.description).joined(separator: ", ")), upstream \(configuration.upstream.url), state \(loaded.stateDirectory)"
                ))
        }
    }
}

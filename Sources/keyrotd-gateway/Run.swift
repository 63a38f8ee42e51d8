import ArgumentParser
import CSystemd
import Foundation
import GatewayServer
import KeyRotationAdapters
import Logging

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve in the foreground (what systemd starts).",
        discussion: """
            Serves every listener and the admin socket until SIGTERM or SIGINT, letting \
            requests in flight finish; SIGHUP re-reads the configuration (an invalid one keeps \
            the running configuration). Exits 78 on a configuration or state it cannot use, \
            75 when another gateway holds the state directory's lock.
            """)

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        // No core dumps, no ptrace by other processes of our user: memory holds secrets.
        _ = keyrotd_set_not_dumpable()
        let environment = ProcessInfo.processInfo.environment
        LoggingSystem.bootstrap {
            LogDestination.makeHandler(label: $0, environment: environment, identifier: "keyrotd-gateway")
        }
        let logger = Logger(label: "keyrotd-gateway")
        do throws(GatewayRuntime.StartFailure) {
            try await GatewayRuntime.run(configPath: options.config, environment: environment, logger: logger)
        } catch {
            for line in error.description.split(separator: "\n") { logger.critical("\(line)") }
            throw ExitCode(error.exitCode)
        }
    }
}

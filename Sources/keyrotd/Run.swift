import ArgumentParser
import CSystemd
import Foundation
import KeyRotationAdapters
import KeyRotationDaemon
import Logging

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon in the foreground (what systemd starts).",
        discussion: """
            Rotates every configured key on its schedule until SIGTERM or SIGINT; SIGHUP \
            re-reads the configuration. Exits 78 on a configuration or state file it cannot \
            use, 75 when another keyrotd holds the state file's lock.
            """)

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        // No core dumps, no ptrace by other processes of our user: memory holds secrets.
        _ = keyrotd_set_not_dumpable()
        let environment = ProcessInfo.processInfo.environment
        LoggingSystem.bootstrap { LogDestination.makeHandler(label: $0, environment: environment) }
        let logger = Logger(label: "keyrotd")
        let daemonOptions = DaemonOptions(configPath: options.config, environment: environment, notifier: SystemdNotifier())
        let daemon: Daemon
        do {
            daemon = try Daemon.start(options: daemonOptions, logger: logger)
        } catch {
            logger.critical("cannot start: \(error.description)")
            throw ExitCode(error.exitCode)
        }
        let status = await daemon.run()
        if status != 0 { throw ExitCode(status) }
    }
}

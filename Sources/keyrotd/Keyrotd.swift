import ArgumentParser

@main
struct Keyrotd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyrotd",
        abstract: "Rotates provider API keys on a schedule, crash-safely.",
        discussion: """
            Exit codes follow sysexits: 0 ok, 64 usage, 65 bad data, 69 unavailable, \
            75 temporary failure, 77 permission denied, 78 configuration.
            """,
        subcommands: [
            Run.self, CheckConfig.self, Status.self, Plan.self, Rotate.self, Revoke.self, AuditCommand.self,
            DeleteOrphan.self,
        ])
}

/// Options every command that reads the configuration takes.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file.", valueName: "path"))
    var config: String = ConfigLoaderDefaults.path
}

/// Options of the commands that report on the state file.
struct ReportOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file.", valueName: "path"))
    var config: String = ConfigLoaderDefaults.path
    @Option(help: ArgumentHelp("State file (default: from the configuration).", valueName: "path"))
    var state: String?
    @Flag(help: "Print JSON instead of a table.")
    var json = false
}

enum ConfigLoaderDefaults {
    static let path = "/etc/keyrotd/keyrotd.toml"
}

import ArgumentParser
import GatewayServer

@main
struct KeyrotdGateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyrotd-gateway",
        abstract: "A local Mistral-compatible endpoint: roles decide models, limits and budgets; consumers hold no provider key.",
        discussion: """
            Consumers call the gateway instead of the provider. It maps each caller to a role, \
            allows only the role's models, enforces its rate limits and monthly budget, and \
            forwards with the role's current upstream key, which keyrotd delivers through the \
            gateway hook (set-key). Exit codes follow sysexits: 0 ok, 64 usage, 65 refused, \
            69 unavailable, 75 temporary failure, 78 configuration.
            """,
        subcommands: [Run.self, CheckConfig.self, Status.self, Token.self, SetKey.self])
}

/// Options every command that reads the configuration takes.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file.", valueName: "path"))
    var config: String = GatewayConfigLoader.defaultPath
}

extension ExitCode {
    static let usage = ExitCode(64)
    static let configurationError = ExitCode(78)
}

import ArgumentParser
import Foundation
import KeyRotation
import KeyRotationAdapters

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration, hooks and credentials.",
        discussion: "Prints every problem with where it is and exits 78, or a one-line summary and exits 0.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let loaded = ConfigLoader.load(path: options.config, environment: ProcessInfo.processInfo.environment)
        for problem in loaded.problems {
            Console.error(problem.formatted(file: loaded.path))
        }
        guard let configuration = loaded.configuration else {
            let count = loaded.errors.count
            Console.error("\(loaded.path): \(count) problem\(count == 1 ? "" : "s"); configuration rejected")
            throw ExitCode.configurationError
        }
        // The options every request will set, on this machine's libcurl (credentials
        // are checked by the file checks above; a stand-in exercises their options).
        for (name, settings) in configuration.providers.sorted(by: { $0.key < $1.key }) {
            let standIn = settings.egress.proxyCredentialsFile.map { _ in ProxyCredentials(user: "check", password: Secret("check")) }
            let egress = HTTPEgress(
                proxy: settings.egress.proxy, proxyCredentials: standIn, caFile: settings.egress.caFile, caMode: settings.egress.caMode)
            do {
                try HTTPClient(egress: egress).selfCheck()
            } catch {
                Console.error("\(loaded.path): providers.\(name): \(error)")
                throw ExitCode.configurationError
            }
        }
        let keys = configuration.keys.map(\.name).joined(separator: ", ")
        let providers = configuration.providers.keys.sorted().joined(separator: ", ")
        let state = configuration.daemon.resolvedStateFile(environment: ProcessInfo.processInfo.environment)
        print("\(loaded.path): OK: \(configuration.keys.count) key\(configuration.keys.count == 1 ? "" : "s") (\(keys)), provider\(configuration.providers.count == 1 ? "" : "s") \(providers), state \(state)")
    }
}

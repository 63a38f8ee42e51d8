import GatewayCore
import Glibc
import KeyRotation
import KeyRotationAdapters

/// gateway.toml read, parsed, checked against the system, and resolved into what the
/// server looks things up by.
public struct LoadedGateway: Sendable {
    public var path: String
    public var configuration: GatewayConfiguration
    /// `state_directory`, or `$STATE_DIRECTORY`.
    public var stateDirectory: String
    /// `admin_socket`, or `$RUNTIME_DIRECTORY/admin.sock`.
    public var adminSocket: String
    /// Clients with a bearer token, by the token's SHA-256.
    public var tokenClients: [(digest: [UInt8], client: Client)]
    /// Clients by Unix user id, and by group id.
    public var userClients: [uid_t: Client]
    public var groupClients: [(gid: gid_t, client: Client)]
    /// Who may use the admin socket: root and `admin_users`.
    public var adminUserIDs: Set<uid_t>
    /// Warnings worth logging (the configuration was accepted).
    public var warnings: [ConfigProblem]
}

public enum GatewayConfigLoader {
    public static let defaultPath = "/etc/keyrotd/gateway.toml"
    static let stake = "whoever can change it can point upstream at themselves and receive every role's provider key"

    /// Every problem, formatted `file:line: path: message`, when the result is nil.
    public static func load(path: String, environment: [String: String]) -> Result<LoadedGateway, ConfigError> {
        let text: String
        switch ConfigLoader.readTrustedText(path: path, stake: stake) {
        case .success(let read): text = read
        case .failure(let problem): return .failure(ConfigError(problems: [problem]))
        }
        let parsed = GatewayConfigParser.parse(text)
        var problems = parsed.problems
        for check in parsed.checks {
            if let problem = problem(with: check, environment: environment) { problems.append(problem) }
        }
        guard let configuration = parsed.configuration, !problems.contains(where: { $0.severity == .error }) else {
            return .failure(ConfigError(problems: problems))
        }
        func missing(_ message: String) -> Result<LoadedGateway, ConfigError> {
            .failure(ConfigError(problems: problems + [ConfigProblem(.path("gateway"), path: "gateway", message)]))
        }
        guard let stateDirectory = configuration.stateDirectory ?? environment["STATE_DIRECTORY"].flatMap({
            $0.split(separator: ":").first.map(String.init)
        }), !stateDirectory.isEmpty else {
            return missing("state_directory is not set and $STATE_DIRECTORY is empty (set one)")
        }
        guard let adminSocket = configuration.adminSocket ?? environment["RUNTIME_DIRECTORY"].flatMap({
            $0.split(separator: ":").first.map { "\($0)/admin.sock" }
        }) else {
            return missing("admin_socket is not set and $RUNTIME_DIRECTORY is empty (set one)")
        }
        var tokenClients: [(digest: [UInt8], client: Client)] = []
        var userClients: [uid_t: Client] = [:]
        var groupClients: [(gid: gid_t, client: Client)] = []
        for client in configuration.clients.values.sorted(by: { $0.name < $1.name }) {
            switch client.credential {
            case .tokenSHA256(let digest): tokenClients.append((digest, client))
            case .unixUser(let name): if let uid = Accounts.userID(named: name) { userClients[uid] = client }
            case .unixGroup(let name): if let gid = Accounts.groupID(named: name) { groupClients.append((gid, client)) }
            }
        }
        var adminUserIDs: Set<uid_t> = [0]
        for name in configuration.adminUsers {
            if let uid = Accounts.userID(named: name) { adminUserIDs.insert(uid) }
        }
        return .success(
            LoadedGateway(
                path: path, configuration: configuration, stateDirectory: stateDirectory, adminSocket: adminSocket,
                tokenClients: tokenClients, userClients: userClients, groupClients: groupClients,
                adminUserIDs: adminUserIDs, warnings: problems.filter { $0.severity == .warning }))
    }

    static func problem(with check: GatewayCheck, environment: [String: String]) -> ConfigProblem? {
        func fileCheck(_ kind: FileCheck.Kind) -> ConfigProblem? {
            FileChecker.problem(
                with: FileCheck(kind: kind, path: check.value, location: check.location, tomlPath: check.tomlPath),
                environment: environment)
        }
        switch check.kind {
        case .unixUser(let name):
            return Accounts.userID(named: name) == nil
                ? ConfigProblem(check.location, path: check.tomlPath, "no user named \"\(name)\" on this system") : nil
        case .unixGroup(let name):
            return Accounts.groupID(named: name) == nil
                ? ConfigProblem(check.location, path: check.tomlPath, "no group named \"\(name)\" on this system") : nil
        case .hook: return fileCheck(.hook)
        case .tlsCertificate: return fileCheck(.certificateBundle)
        case .tlsKey: return fileCheck(.secretFile(secret: "TLS private key"))
        }
    }
}

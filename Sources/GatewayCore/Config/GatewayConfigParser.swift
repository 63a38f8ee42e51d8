import KeyRotation
import TOMLKit

/// What `GatewayConfigParser` found: the configuration when there were no errors,
/// every problem seen, and the checks only an adapter can make (files, accounts).
public struct ParsedGatewayConfiguration: Sendable {
    public var configuration: GatewayConfiguration?
    public var problems: [ConfigProblem]
    public var checks: [GatewayCheck]

    public init(configuration: GatewayConfiguration?, problems: [ConfigProblem], checks: [GatewayCheck]) {
        self.configuration = configuration
        self.problems = problems
        self.checks = checks
    }
}

/// Something in the configuration that must be checked against the real system.
public struct GatewayCheck: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// `unix_user`: the account must exist.
        case unixUser(String)
        /// `unix_group`: the group must exist.
        case unixGroup(String)
        /// An alert hook: trusted executable (keyrotd's hook rules).
        case hook
        /// `tls_certificate`: readable, holds a PEM certificate chain.
        case tlsCertificate
        /// `tls_key`: a secret file (0600, trusted path), holds a PEM private key.
        case tlsKey
    }

    public var kind: Kind
    /// The path or name as written.
    public var value: String
    public var location: ConfigProblem.Location
    public var tomlPath: String

    public init(kind: Kind, value: String, location: ConfigProblem.Location, tomlPath: String) {
        self.kind = kind
        self.value = value
        self.location = location
        self.tomlPath = tomlPath
    }
}

/// Parses and validates gateway.toml. Pure: reads only the text it is given, and
/// reports every problem with its line, not just the first.
///
/// Built on keyrotd's own TOML reading (`TOMLDocument`, `TOMLValueReading`,
/// `SourceLocator`), so both programs reject the same mistakes with the same words.
public enum GatewayConfigParser {
    public static func parse(_ text: String) -> ParsedGatewayConfiguration {
        let root: TOMLTable
        switch TOMLDocument.parse(text) {
        case .success(let table): root = table
        case .failure(let error): return ParsedGatewayConfiguration(configuration: nil, problems: error.problems, checks: [])
        }
        var reader = GatewayConfigReader(locator: SourceLocator(text))
        let configuration = reader.configuration(root)
        let failed = reader.problems.contains { $0.severity == .error }
        return ParsedGatewayConfiguration(
            configuration: failed ? nil : configuration, problems: reader.problems, checks: reader.checks)
    }
}

import KeyRotation

/// keyrotd-gateway's configuration (`/etc/keyrotd/gateway.toml`), validated.
///
/// Pure values: paths are as written (the adapter resolves defaults such as
/// `$RUNTIME_DIRECTORY/admin.sock` and checks files), user and group names are not
/// yet resolved to ids.
public struct GatewayConfiguration: Sendable, Equatable {
    /// `[gateway] listen`: where consumers connect. At least one.
    public var listeners: [Listener]
    /// `[gateway] admin_socket`; nil means `$RUNTIME_DIRECTORY/admin.sock`.
    public var adminSocket: String?
    /// Who may use the admin socket besides root (`[gateway] admin_users`, default `["keyrotd"]`).
    public var adminUsers: [String]
    /// `[gateway] state_directory`; nil means `$STATE_DIRECTORY`.
    public var stateDirectory: String?
    /// `[gateway] upstream`: https anywhere, plain http only to a loopback address.
    public var upstream: Upstream
    /// `[gateway] currency`: a label for budgets and prices ("EUR").
    public var currency: String
    /// `[gateway] tls_certificate` and `tls_key`: TLS on every TCP listener when set.
    public var tls: TLSFiles?
    /// `[gateway] max_body_bytes` (default 8 MiB): larger request bodies get 413.
    public var maxBodyBytes: Int
    /// `[gateway] upstream_timeout` in seconds (default 300): no answer byte for this long gets 504.
    public var upstreamTimeoutSeconds: Int
    /// `[prices."MODEL"]`: per million tokens, in `currency`.
    public var prices: [String: ModelPrice]
    /// `[roles.NAME]`.
    public var roles: [String: Role]
    /// `[clients.NAME]`.
    public var clients: [String: Client]
    /// `[alerts] hooks`: executables run for budget thresholds, keyrotd's alert-hook contract.
    public var alertHooks: [String]
    /// `[alerts] hook_timeout` in seconds (default 30).
    public var alertHookTimeoutSeconds: Int

    public init(
        listeners: [Listener], adminSocket: String? = nil, adminUsers: [String] = ["keyrotd"],
        stateDirectory: String? = nil, upstream: Upstream, currency: String, tls: TLSFiles? = nil,
        maxBodyBytes: Int = 8 << 20, upstreamTimeoutSeconds: Int = 300,
        prices: [String: ModelPrice] = [:], roles: [String: Role] = [:], clients: [String: Client] = [:],
        alertHooks: [String] = [], alertHookTimeoutSeconds: Int = 30
    ) {
        self.listeners = listeners
        self.adminSocket = adminSocket
        self.adminUsers = adminUsers
        self.stateDirectory = stateDirectory
        self.upstream = upstream
        self.currency = currency
        self.tls = tls
        self.maxBodyBytes = maxBodyBytes
        self.upstreamTimeoutSeconds = upstreamTimeoutSeconds
        self.prices = prices
        self.roles = roles
        self.clients = clients
        self.alertHooks = alertHooks
        self.alertHookTimeoutSeconds = alertHookTimeoutSeconds
    }

    public enum Listener: Sendable, Equatable, Hashable, CustomStringConvertible {
        /// "127.0.0.1:8480", "[::1]:8480", "0.0.0.0:8480".
        case tcp(host: String, port: Int)
        /// "unix:/run/keyrotd-gateway/api.sock".
        case unix(path: String)

        public var description: String {
            switch self {
            case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unix(let path): "unix:\(path)"
            }
        }
    }

    public struct Upstream: Sendable, Equatable {
        /// "https" or "http".
        public var scheme: String
        public var host: String
        public var port: Int
        /// The URL as written, without a trailing slash ("https://api.mistral.ai").
        public var url: String

        public init(scheme: String, host: String, port: Int, url: String) {
            self.scheme = scheme
            self.host = host
            self.port = port
            self.url = url
        }
    }

    public struct TLSFiles: Sendable, Equatable {
        public var certificate: String
        public var key: String

        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }

    /// The role a client name maps to, if both exist.
    public func role(ofClient name: String) -> Role? {
        clients[name].flatMap { roles[$0.role] }
    }
}

/// Prices of one model, per million tokens.
public struct ModelPrice: Sendable, Equatable {
    public var inputPerMillion: Money
    public var outputPerMillion: Money

    public init(inputPerMillion: Money, outputPerMillion: Money) {
        self.inputPerMillion = inputPerMillion
        self.outputPerMillion = outputPerMillion
    }

    /// What `input` prompt tokens and `output` completion tokens cost, rounded up to
    /// the next nano-unit, so a sum of costs never undercounts.
    public func cost(input: Int, output: Int) -> Money {
        inputPerMillion.perMillion(times: input) + outputPerMillion.perMillion(times: output)
    }
}

/// `[roles.NAME]`.
public struct Role: Sendable, Equatable {
    public var name: String
    /// The keyrotd key whose secret this role spends (`upstream_key`).
    public var upstreamKey: String
    public var models: ModelAllowList
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?
    public var monthlyBudget: Money?
    /// Percentages of `monthlyBudget`, ascending, each in 1...100.
    public var alertAt: [Int]
    /// Injected into chat and FIM requests without one; the cap for those with more.
    public var maxTokens: Int?

    public init(
        name: String, upstreamKey: String, models: ModelAllowList, requestsPerMinute: Int? = nil,
        tokensPerMinute: Int? = nil, monthlyBudget: Money? = nil, alertAt: [Int] = [], maxTokens: Int? = nil
    ) {
        self.name = name
        self.upstreamKey = upstreamKey
        self.models = models
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.monthlyBudget = monthlyBudget
        self.alertAt = alertAt
        self.maxTokens = maxTokens
    }
}

/// `[clients.NAME]`: who a caller is, and its role.
public struct Client: Sendable, Equatable {
    public enum Credential: Sendable, Equatable {
        /// SHA-256 of the bearer token (32 bytes), from `token_sha256` (64 hex digits).
        case tokenSHA256([UInt8])
        /// A Unix user name, matched by SO_PEERCRED on a unix: listener.
        case unixUser(String)
        /// A Unix group name: matches a peer whose primary or supplementary group it is.
        case unixGroup(String)
    }

    public var name: String
    public var role: String
    public var credential: Credential

    public init(name: String, role: String, credential: Credential) {
        self.name = name
        self.role = role
        self.credential = credential
    }
}

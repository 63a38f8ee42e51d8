import Foundation

/// keyrotd's configuration after parsing and validation. Only `ConfigParser`
/// builds one, so every value here already satisfies the rules it checks.
public struct Configuration: Sendable, Equatable {
    public var daemon: DaemonSettings
    public var audit: AuditSettings
    public var budget: BudgetSettings
    /// Run on `failed`, `budget` and `audit` events (`[defaults] alert_hooks`).
    public var alertHooks: [String]
    public var providers: [String: ProviderSettings]
    /// Sorted by name.
    public var keys: [ManagedKey]

    public func key(named name: String) -> ManagedKey? {
        keys.first { $0.name == name }
    }
}

public struct DaemonSettings: Sendable, Equatable {
    /// nil: `$STATE_DIRECTORY/state.json`, or `/var/lib/keyrotd/state.json`.
    public var stateFile: String?
    /// nil: `$RUNTIME_DIRECTORY/control.sock`, or `/run/keyrotd/control.sock`.
    public var controlSocket: String?
    /// Keys found overdue at start-up are started this far apart, oldest first.
    public var catchUpSpacing: TimeSpan
    /// This deployment's name, part of every provider key name it creates
    /// (`keyrotd/<instance>/<key>/…`). nil: the one the state file holds, or one
    /// drawn at random at the first start. Set, it wins over the state file's.
    public var instance: String?

    public init(stateFile: String?, controlSocket: String?, catchUpSpacing: TimeSpan, instance: String? = nil) {
        self.stateFile = stateFile
        self.controlSocket = controlSocket
        self.catchUpSpacing = catchUpSpacing
        self.instance = instance
    }

    public static let defaultStateFile = "/var/lib/keyrotd/state.json"
    public static let defaultControlSocket = "/run/keyrotd/control.sock"

    /// The state file path, resolved against the environment systemd gives the service.
    public func resolvedStateFile(environment: [String: String]) -> String {
        Self.stateFile(configured: stateFile, environment: environment)
    }

    public static func stateFile(configured: String?, environment: [String: String]) -> String {
        if let configured { return configured }
        if let dir = environment["STATE_DIRECTORY"]?.split(separator: ":").first, !dir.isEmpty {
            return "\(dir)/state.json"
        }
        return defaultStateFile
    }

    public func resolvedControlSocket(environment: [String: String]) -> String {
        Self.controlSocket(configured: controlSocket, environment: environment)
    }

    public static func controlSocket(configured: String?, environment: [String: String]) -> String {
        if let configured { return configured }
        if let dir = environment["RUNTIME_DIRECTORY"]?.split(separator: ":").first, !dir.isEmpty {
            return "\(dir)/control.sock"
        }
        return Self.defaultControlSocket
    }
}

/// How and when one key rotates: `[defaults]` with a key's own overrides applied.
public struct KeyPolicy: Sendable, Equatable {
    public var rotateEvery: TimeSpan
    public var overlap: TimeSpan
    /// Upper bound of the random delay added to each due time.
    public var jitter: TimeSpan
    public var hookTimeout: TimeSpan
    /// Rotations start only inside this window (local time); nil = any time.
    public var window: RotationWindow?
    /// Usage-aware retirement may extend the overlap up to this.
    public var maxOverlap: TimeSpan
    /// First retry delay after a failed step; doubles per attempt up to `retryMax`.
    public var retryInitial: TimeSpan
    public var retryMax: TimeSpan
    /// Retry interval for a step blocked on something an operator must fix.
    public var blockedRetry: TimeSpan

    /// Usage-aware retirement is on when the overlap may grow.
    public var watchesOldKeyUsage: Bool { maxOverlap > overlap }

    public static let standard = KeyPolicy(
        rotateEvery: .days(90), overlap: .hours(24), jitter: .hours(6),
        hookTimeout: .minutes(2), window: nil, maxOverlap: .days(7),
        retryInitial: .seconds(30), retryMax: .hours(1), blockedRetry: .hours(6))

    /// Extra lifetime given to each new key at the provider beyond its planned use,
    /// so a key expires on its own if keyrotd is gone for good, but never before
    /// its successor can be in place.
    public var expirationMargin: TimeSpan {
        max(.days(7), rotateEvery / 10)
    }

    /// Lifetime requested for a new key: it must outlive its rotation interval, the
    /// largest jitter, and the longest overlap of its own retirement.
    public var keyLifetime: TimeSpan {
        rotateEvery + jitter + max(overlap, maxOverlap) + expirationMargin
    }
}

public enum ProviderType: String, Sendable, Equatable, CaseIterable {
    case mistral
}

public enum AdminKeySource: Sendable, Equatable {
    /// A file in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
    case credential(String)
    /// An absolute path; must be 0600 or stricter.
    case file(String)
}

public struct ProviderSettings: Sendable, Equatable {
    public var name: String
    public var type: ProviderType
    public var baseURL: String
    public var adminKey: AdminKeySource
    /// keyrotd paces its own admin calls to stay under this.
    public var requestsPerMinute: Int
    /// Longest an HTTP call may take, connection included (`timeout`, default 30s).
    public var timeout: TimeSpan

    /// How keyrotd reaches the provider: an explicit proxy and extra trust.
    public var egress: EgressSettings = EgressSettings()

    public static let defaultTimeout = TimeSpan.seconds(30)
}

/// A provider's way out of the network (`proxy`, `proxy_credentials_file`,
/// `ca_file`, `ca_mode`). Only what the configuration says: proxy variables in the
/// environment are never used, so a shell's or a hook's environment cannot send
/// the admin key elsewhere.
public struct EgressSettings: Sendable, Equatable {
    /// `http://host:port` or `https://host:port`, no credentials, no path; nil: direct.
    /// Every request is tunnelled through it with CONNECT.
    public var proxy: String?
    /// Absolute path of a 0600 file holding `user:password` for the proxy.
    public var proxyCredentialsFile: String?
    /// A PEM bundle of extra CA certificates (e.g. a TLS-inspecting proxy's CA),
    /// trusted for the provider and for an https proxy.
    public var caFile: String?
    public var caMode: CAMode = .add

    public init(proxy: String? = nil, proxyCredentialsFile: String? = nil, caFile: String? = nil, caMode: CAMode = .add) {
        self.proxy = proxy
        self.proxyCredentialsFile = proxyCredentialsFile
        self.caFile = caFile
        self.caMode = caMode
    }
}

/// Whether `ca_file` is trusted besides the system's CA store or instead of it.
public enum CAMode: String, Sendable, Equatable, CaseIterable {
    case add
    case replace
}

public struct ManagedKey: Sendable, Equatable {
    public var name: String
    /// Name of a `[providers.*]` section.
    public var provider: String
    /// Provider workspace (Mistral workspace UUID): the key's scope.
    public var workspace: String
    /// Provider user the key is created for.
    public var user: String
    /// Absolute paths, run in order on deploy and on retire.
    public var hooks: [String]
    /// Provider key id to take over instead of creating a first key.
    public var adopt: String?
    public var policy: KeyPolicy
}

public struct AuditSettings: Sendable, Equatable {
    public var every: TimeSpan
    public var staleAfter: TimeSpan
}

public struct BudgetSettings: Sendable, Equatable {
    public var every: TimeSpan
    /// Percent of the spend limit, strictly increasing.
    public var thresholds: [Int]
}

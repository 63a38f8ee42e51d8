import Foundation
import TOMLKit

/// What `ConfigParser` found: the configuration when there were no errors, every
/// problem it saw, and the file-system checks that only an adapter can make.
public struct ParsedConfiguration: Sendable {
    /// nil when any problem is an error.
    public var configuration: Configuration?
    /// `[daemon]` as far as it could be read, even when other parts are wrong, so
    /// `status` finds the right state file under a broken configuration.
    public var daemon: DaemonSettings?
    public var problems: [ConfigProblem]
    /// Paths the configuration relies on; checked by the file-system adapter even
    /// when other parts of the configuration are wrong, so one run lists everything.
    public var fileChecks: [FileCheck]
}

/// A path from the configuration that must pass a check on the real file system.
public struct FileCheck: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Exists, is a regular file, is executable, and is not group/world-writable.
        case hook
        /// Readable by us, not readable or writable by group/others, not empty;
        /// `secret` names what it holds in messages ("admin key", "proxy credentials").
        case secretFile(secret: String)
        /// `$CREDENTIALS_DIRECTORY/<name>` readable and not empty.
        case credential(name: String)
        /// Readable, holds at least one PEM certificate (`ca_file`).
        case certificateBundle
    }

    public var kind: Kind
    public var path: String
    public var location: ConfigProblem.Location
    public var tomlPath: String

    public init(kind: Kind, path: String, location: ConfigProblem.Location, tomlPath: String) {
        self.kind = kind
        self.path = path
        self.location = location
        self.tomlPath = tomlPath
    }
}

/// Parses and validates keyrotd's TOML configuration. Pure: reads only the text
/// it is given. Reports every problem with where it is, not just the first.
public enum ConfigParser {
    public static func parse(_ text: String) -> ParsedConfiguration {
        let root: TOMLTable
        switch TOMLDocument.parse(text) {
        case .success(let table): root = table
        case .failure(let error):
            return ParsedConfiguration(configuration: nil, daemon: nil, problems: error.problems, fileChecks: [])
        }
        var reader = Reader(locator: SourceLocator(text))
        let configuration = reader.configuration(root)
        let failed = reader.problems.contains { $0.severity == .error }
        return ParsedConfiguration(
            configuration: failed ? nil : configuration,
            daemon: configuration.daemon,
            problems: reader.problems,
            fileChecks: reader.fileChecks)
    }
}

// MARK: - Reading tables

private struct Reader: TOMLValueReading {
    let locator: SourceLocator
    var problems: [ConfigProblem] = []
    var fileChecks: [FileCheck] = []

    static let sections = ["daemon", "defaults", "audit", "budget", "providers", "keys"]
    static let daemonKeys = ["state_file", "control_socket", "catch_up_spacing", "instance"]
    static let policyKeys = [
        "rotate_every", "overlap", "jitter", "hook_timeout", "window", "max_overlap",
        "retry_initial", "retry_max", "blocked_retry",
    ]
    static let defaultsKeys = policyKeys + ["alert_hooks"]
    static let auditKeys = ["every", "stale_after"]
    static let budgetKeys = ["every", "thresholds"]
    static let providerKeys = ["type", "base_url", "admin_key_credential", "admin_key_file", "requests_per_minute", "timeout",
        "proxy", "proxy_credentials_file", "ca_file", "ca_mode",
    ]
    static let keyKeys = policyKeys + ["provider", "workspace", "user", "hooks", "adopt"]

    mutating func configuration(_ root: TOMLTable) -> Configuration {
        checkKeys(root, table: [], allowed: Self.sections, what: "section")

        let daemonTable = table(root, "daemon", parent: [])
        let defaultsTable = table(root, "defaults", parent: [])
        let auditTable = table(root, "audit", parent: [])
        let budgetTable = table(root, "budget", parent: [])

        checkKeys(daemonTable, table: ["daemon"], allowed: Self.daemonKeys, what: "key")
        checkKeys(defaultsTable, table: ["defaults"], allowed: Self.defaultsKeys, what: "key")
        checkKeys(auditTable, table: ["audit"], allowed: Self.auditKeys, what: "key")
        checkKeys(budgetTable, table: ["budget"], allowed: Self.budgetKeys, what: "key")

        let daemon = DaemonSettings(
            stateFile: absolutePath(daemonTable, ["daemon"], "state_file"),
            controlSocket: absolutePath(daemonTable, ["daemon"], "control_socket"),
            catchUpSpacing: span(daemonTable, ["daemon"], "catch_up_spacing") ?? .minutes(1),
            instance: instance(daemonTable))

        let defaults = policy(defaultsTable, ["defaults"], base: .standard)
        validate(defaults, table: ["defaults"])

        var alertHooks: [String] = []
        if let hooks = stringArray(defaultsTable, ["defaults"], "alert_hooks") {
            alertHooks = hookPaths(hooks, table: ["defaults"], key: "alert_hooks")
        }

        let audit = AuditSettings(
            every: positiveSpan(auditTable, ["audit"], "every") ?? .days(1),
            staleAfter: positiveSpan(auditTable, ["audit"], "stale_after") ?? .days(30))
        let budget = BudgetSettings(
            every: positiveSpan(budgetTable, ["budget"], "every") ?? .hours(1),
            thresholds: thresholds(budgetTable) ?? [50, 80, 95])

        var providers: [String: ProviderSettings] = [:]
        let providersTable = table(root, "providers", parent: [])
        for name in providersTable?.keys ?? [] {
            guard let section = table(providersTable, name, parent: ["providers"]) else { continue }
            if let provider = provider(name, section) { providers[name] = provider }
        }

        var keys: [ManagedKey] = []
        let keysTable = table(root, "keys", parent: [])
        for name in (keysTable?.keys ?? []).sorted() {
            guard let section = table(keysTable, name, parent: ["keys"]) else { continue }
            if let key = managedKey(name, section, defaults: defaults, providers: providers, providersTable: providersTable) {
                keys.append(key)
            }
        }
        var adopters: [String: String] = [:]
        for key in keys {
            guard let id = key.adopt else { continue }
            if let other = adopters[id] {
                report(["keys", key.name], "adopt", "key \(id) is already adopted by [keys.\(other)]: one provider key can have one manager")
            } else {
                adopters[id] = key.name
            }
        }
        if (keysTable?.keys ?? []).isEmpty {
            problems.append(ConfigProblem(.file, "no [keys.NAME] section: there is nothing to rotate"))
        }

        return Configuration(
            daemon: daemon, audit: audit, budget: budget, alertHooks: alertHooks,
            providers: providers, keys: keys)
    }

    // MARK: Sections

    mutating func provider(_ name: String, _ section: TOMLTable) -> ProviderSettings? {
        let path = ["providers", name]
        checkKeys(section, table: path, allowed: Self.providerKeys, what: "key")
        var ok = true

        var type: ProviderType?
        if let text = string(section, path, "type") {
            type = ProviderType(rawValue: text)
            if type == nil {
                let known = ProviderType.allCases.map(\.rawValue).joined(separator: ", ")
                report(path, "type", "unknown provider type \"\(text)\" (known: \(known))")
            }
        } else if section["type"] == nil {
            report(path, nil, "missing type (e.g. type = \"mistral\")")
        }
        ok = ok && type != nil

        let baseURL = string(section, path, "base_url")
        if let baseURL {
            if let message = SecretBearingURL.problem(baseURL) {
                report(path, "base_url", message)
                ok = false
            }
        } else if section["base_url"] == nil {
            report(path, nil, "missing base_url (e.g. base_url = \"https://api.mistral.ai\")")
            ok = false
        }

        // Neither value is ever quoted in a message: a key pasted into either by
        // mistake would be printed to the terminal or the journal.
        let credential = string(section, path, "admin_key_credential")
        let file = string(section, path, "admin_key_file")
        var adminKey: AdminKeySource?
        switch (credential, file) {
        case (let name?, nil):
            if name.isEmpty || name.contains("/") || name == "." || name == ".." {
                report(path, "admin_key_credential", "must be a credential name (a file name without \"/\"); the value is not shown, in case it is a key")
            } else {
                adminKey = .credential(name)
                addFileCheck(.credential(name: name), name, path, "admin_key_credential")
            }
        case (nil, let file?):
            if file.hasPrefix("/") {
                adminKey = .file(file)
                addFileCheck(.secretFile(secret: "admin key"), file, path, "admin_key_file")
            } else {
                report(path, "admin_key_file", "must be an absolute path; the value is not shown, in case it is a key")
            }
        case (.some, .some):
            report(path, "admin_key_file", "set admin_key_credential or admin_key_file, not both")
        case (nil, nil):
            if section["admin_key_credential"] == nil && section["admin_key_file"] == nil {
                report(path, nil, "missing admin_key_credential (or admin_key_file): where the admin key comes from")
            }
        }

        var rpm = 60
        if let value = int(section, path, "requests_per_minute") {
            if value < 1 || value > 100_000 {
                report(path, "requests_per_minute", "must be between 1 and 100000, not \(value)")
            } else {
                rpm = value
            }
        }

        var timeout = ProviderSettings.defaultTimeout
        if let value = positiveSpan(section, path, "timeout") {
            if value > .minutes(10) {
                report(path, "timeout", "must be at most 10min, not \(value)")
            } else {
                timeout = value
            }
        }

        let egress = egress(section, path, baseURL: baseURL)

        guard ok, let type, let baseURL, let adminKey, let egress else { return nil }
        return ProviderSettings(
            name: name, type: type, baseURL: baseURL, adminKey: adminKey, requestsPerMinute: rpm, timeout: timeout,
            egress: egress)
    }

    /// `proxy`, `proxy_credentials_file`, `ca_file`, `ca_mode` (rules in `EgressRules`);
    /// nil when any of them was reported.
    mutating func egress(_ section: TOMLTable, _ path: [String], baseURL: String?) -> EgressSettings? {
        let reported = problems.count
        var egress = EgressSettings()
        var proxyParts: (scheme: String, host: String)?
        if let proxy = string(section, path, "proxy") {
            switch EgressRules.proxy(proxy) {
            case .success(let parts):
                proxyParts = parts
                egress.proxy = proxy
                if let baseURL, URLComponents(string: baseURL)?.scheme?.lowercased() == "http" {
                    report(path, "proxy", "a plain-http base_url does not go through a proxy (it would carry the admin key in clear text); use https")
                }
            case .failure(let problem):
                report(path, "proxy", problem.message)
            }
        }
        if let file = absolutePath(section, path, "proxy_credentials_file") {
            if section["proxy"] == nil {
                report(path, "proxy_credentials_file", "is set but there is no proxy")
            } else if let proxyParts, let problem = EgressRules.credentialsProblem(proxyScheme: proxyParts.scheme, proxyHost: proxyParts.host) {
                report(path, "proxy_credentials_file", problem)
            }
            egress.proxyCredentialsFile = file
            addFileCheck(.secretFile(secret: "proxy credentials"), file, path, "proxy_credentials_file")
        }
        if let file = absolutePath(section, path, "ca_file") {
            egress.caFile = file
            addFileCheck(.certificateBundle, file, path, "ca_file")
        }
        if let text = string(section, path, "ca_mode") {
            if let mode = CAMode(rawValue: text) {
                egress.caMode = mode
                if section["ca_file"] == nil { report(path, "ca_mode", "is set but there is no ca_file") }
            } else {
                report(path, "ca_mode", "must be \"add\" (ca_file besides the system CA store) or \"replace\" (ca_file only), not \"\(text)\"")
            }
        }
        return problems.count == reported ? egress : nil
    }

    mutating func managedKey(
        _ name: String, _ section: TOMLTable, defaults: KeyPolicy,
        providers: [String: ProviderSettings], providersTable: TOMLTable?
    ) -> ManagedKey? {
        let path = ["keys", name]
        checkKeys(section, table: path, allowed: Self.keyKeys, what: "key")
        var ok = true
        if !ManagedKey.isValidName(name) {
            report(path, nil, "\"\(name)\" is not a valid key name: use 1-64 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit")
            ok = false
        }

        let provider = string(section, path, "provider")
        if let provider {
            if providersTable?[provider] == nil {
                let known = (providersTable?.keys ?? []).sorted().joined(separator: ", ")
                report(path, "provider", "no [providers.\(provider)] section" + (known.isEmpty ? "" : " (defined: \(known))"))
                ok = false
            }
        } else if section["provider"] == nil {
            report(path, nil, "missing provider (the name of a [providers.NAME] section)")
            ok = false
        }

        let workspace = uuid(section, path, "workspace")
        let user = uuid(section, path, "user")
        ok = ok && workspace != nil && user != nil

        var hooks: [String] = []
        if let list = stringArray(section, path, "hooks") {
            hooks = hookPaths(list, table: path, key: "hooks")
            if list.isEmpty {
                report(path, "hooks", "is empty: the new secret would reach no consumer")
                ok = false
            }
        } else if section["hooks"] == nil {
            report(path, nil, "missing hooks: the new secret would reach no consumer")
            ok = false
        }

        var adopt: String?
        if let id = string(section, path, "adopt") {
            if id.isEmpty {
                report(path, "adopt", "is empty (expected a provider key id)")
            } else {
                adopt = id
            }
        }

        let policy = policy(section, path, base: defaults)
        validate(policy, table: path, sets: Set(section.keys))

        guard ok, let provider, let workspace, let user else { return nil }
        return ManagedKey(
            name: name, provider: provider, workspace: workspace, user: user,
            hooks: hooks, adopt: adopt, policy: policy)
    }

    mutating func policy(_ table: TOMLTable?, _ path: [String], base: KeyPolicy) -> KeyPolicy {
        var policy = base
        if let v = positiveSpan(table, path, "rotate_every") { policy.rotateEvery = v }
        if let v = positiveSpan(table, path, "overlap") { policy.overlap = v }
        if let v = span(table, path, "jitter") { policy.jitter = v }
        if let v = positiveSpan(table, path, "hook_timeout") { policy.hookTimeout = v }
        if let v = positiveSpan(table, path, "retry_initial") { policy.retryInitial = v }
        if let v = positiveSpan(table, path, "retry_max") { policy.retryMax = v }
        if let v = positiveSpan(table, path, "blocked_retry") { policy.blockedRetry = v }
        if let v = span(table, path, "max_overlap") {
            policy.maxOverlap = v
        } else if table?["overlap"] != nil, policy.maxOverlap < policy.overlap {
            policy.maxOverlap = policy.overlap
        }
        if let text = string(table, path, "window") {
            do {
                policy.window = try RotationWindow(parsing: text)
            } catch {
                report(path, "window", error.description)
            }
        }
        return policy
    }

    /// Rules that relate several durations, checked on the effective policy. A key
    /// section reports only the rules involving a value it sets itself, at that
    /// value; a rule broken by `[defaults]` alone is reported once, there.
    mutating func validate(_ policy: KeyPolicy, table path: [String], sets: Set<String>? = nil) {
        func check(_ broken: Bool, _ involved: [String], _ message: String) {
            guard broken else { return }
            guard let sets else { return report(path, involved[0], message) }
            guard let key = involved.first(where: sets.contains) else { return }
            report(path, key, message)
        }
        check(policy.overlap >= policy.rotateEvery, ["overlap", "rotate_every"],
              "overlap (\(policy.overlap)) must be shorter than rotate_every (\(policy.rotateEvery))")
        check(policy.jitter > policy.rotateEvery / 4, ["jitter", "rotate_every"],
              "jitter (\(policy.jitter)) must be at most a quarter of rotate_every (\(policy.rotateEvery / 4))")
        check(policy.maxOverlap < policy.overlap, ["max_overlap", "overlap"],
              "max_overlap (\(policy.maxOverlap)) must not be shorter than overlap (\(policy.overlap))")
        check(policy.retryMax < policy.retryInitial, ["retry_max", "retry_initial"],
              "retry_max (\(policy.retryMax)) must not be shorter than retry_initial (\(policy.retryInitial))")
    }

    mutating func thresholds(_ table: TOMLTable?) -> [Int]? {
        guard let value = table?["thresholds"] else { return nil }
        guard let array = value.array else {
            report(["budget"], "thresholds", "must be an array of percentages, e.g. [50, 80, 95]")
            return nil
        }
        var result: [Int] = []
        for element in array {
            guard let percent = element.int, (1...100).contains(percent) else {
                report(["budget"], "thresholds", "each threshold must be a whole percentage from 1 to 100")
                return nil
            }
            result.append(percent)
        }
        if result.isEmpty || zip(result, result.dropFirst()).contains(where: { $0 >= $1 }) {
            report(["budget"], "thresholds", "must be non-empty and strictly increasing")
            return nil
        }
        return result
    }

    // MARK: Values

    /// `[daemon] instance`: part of every provider key name, so a name's rules.
    mutating func instance(_ table: TOMLTable?) -> String? {
        guard let text = string(table, ["daemon"], "instance") else { return nil }
        guard ProviderKeyName.isValidInstance(text) else {
            report(["daemon"], "instance", "\"\(text)\" is not a valid instance name: use 1-\(ProviderKeyName.maxInstanceLength) letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit")
            return nil
        }
        return text
    }

    mutating func uuid(_ table: TOMLTable?, _ path: [String], _ key: String) -> String? {
        guard let text = string(table, path, key) else {
            if table?[key] == nil { report(path, nil, "missing \(key) (a UUID)") }
            return nil
        }
        guard UUID(uuidString: text) != nil else {
            report(path, key, "\"\(text)\" is not a UUID")
            return nil
        }
        return text.lowercased()
    }

    // MARK: Reporting

    mutating func addHookCheck(_ hook: String, _ table: [String], _ key: String) {
        addFileCheck(.hook, hook, table, key)
    }

    mutating func addFileCheck(_ kind: FileCheck.Kind, _ file: String, _ table: [String], _ key: String) {
        fileChecks.append(FileCheck(
            kind: kind, path: file, location: location(table, key),
            tomlPath: (table + [key]).joined(separator: ".")))
    }

}

extension ManagedKey {
    /// Key names appear in provider key names, journal fields and file names.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 64 else { return false }
        return name.unicodeScalars.allSatisfy(isNameCharacter) && first != "." && first != "_" && first != "-"
    }

    /// ASCII letters, digits, ".", "_" and "-": what names and ids keyrotd logs and
    /// puts into provider key names are made of.
    public static func isNameCharacter(_ c: Unicode.Scalar) -> Bool {
        c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "." || c == "_" || c == "-")
    }
}

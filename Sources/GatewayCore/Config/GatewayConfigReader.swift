import Foundation
import KeyRotation
import TOMLKit

/// Reads gateway.toml's tables into a `GatewayConfiguration`, collecting every problem
/// (at its line) and the checks only an adapter can make. Returns a configuration even
/// when there were errors; `GatewayConfigParser` drops it then.
struct GatewayConfigReader: TOMLValueReading {
    let locator: SourceLocator
    var problems: [ConfigProblem] = []
    var checks: [GatewayCheck] = []
    /// An element of `listen` was wrong: which kinds of listener exist is then unknown,
    /// and a client is not blamed for a missing one.
    var listenersUnknown = false

    static let sections = ["gateway", "prices", "roles", "clients", "alerts"]
    static let gatewayKeys = [
        "listen", "admin_socket", "admin_users", "state_directory", "upstream", "currency",
        "tls_certificate", "tls_key", "max_body_bytes", "upstream_timeout",
    ]
    static let priceKeys = ["input", "output"]
    static let roleKeys = [
        "upstream_key", "models", "requests_per_minute", "tokens_per_minute", "monthly_budget", "alert_at", "max_tokens",
    ]
    static let clientKeys = ["role", "token_sha256", "unix_user", "unix_group"]
    static let alertsKeys = ["hooks", "hook_timeout"]
    /// A request body above this is surely a mistake in `max_body_bytes` (1 GiB held in memory).
    static let largestBody = 1 << 30
    /// The `sun_path` limit of a unix socket address, without its terminating NUL.
    static let longestSocketPath = 107

    mutating func addHookCheck(_ hook: String, _ table: [String], _ key: String) {
        addCheck(.hook, hook, table, key)
    }

    mutating func addCheck(_ kind: GatewayCheck.Kind, _ value: String, _ table: [String], _ key: String) {
        checks.append(GatewayCheck(
            kind: kind, value: value, location: location(table, key), tomlPath: (table + [key]).joined(separator: ".")))
    }

    mutating func configuration(_ root: TOMLTable) -> GatewayConfiguration {
        checkKeys(root, table: [], allowed: Self.sections, what: "section")
        let gatewayTable = table(root, "gateway", parent: [])
        if root["gateway"] == nil {
            problems.append(ConfigProblem(.file, "no [gateway] section: listen, upstream and currency are needed"))
        }
        checkKeys(gatewayTable, table: ["gateway"], allowed: Self.gatewayKeys, what: "key")
        var configuration = gateway(gatewayTable)

        let pricesTable = table(root, "prices", parent: [])
        for model in (pricesTable?.keys ?? []).sorted() {
            guard let section = table(pricesTable, model, parent: ["prices"]) else { continue }
            if let price = price(model, section) { configuration.prices[model] = price }
        }

        let rolesTable = table(root, "roles", parent: [])
        for name in (rolesTable?.keys ?? []).sorted() {
            guard let section = table(rolesTable, name, parent: ["roles"]) else { continue }
            if let role = role(name, section, pricedModels: Set(pricesTable?.keys ?? [])) { configuration.roles[name] = role }
        }

        let clientsTable = table(root, "clients", parent: [])
        for name in (clientsTable?.keys ?? []).sorted() {
            guard let section = table(clientsTable, name, parent: ["clients"]) else { continue }
            if let client = client(name, section, rolesTable: rolesTable, listeners: configuration.listeners) {
                configuration.clients[name] = client
            }
        }
        if (clientsTable?.keys ?? []).isEmpty {
            problems.append(ConfigProblem(.file, "no [clients.NAME] section: nobody could use the gateway"))
        }
        duplicateTokens(configuration.clients)

        let alertsTable = table(root, "alerts", parent: [])
        checkKeys(alertsTable, table: ["alerts"], allowed: Self.alertsKeys, what: "key")
        if let hooks = stringArray(alertsTable, ["alerts"], "hooks") {
            configuration.alertHooks = hookPaths(hooks, table: ["alerts"], key: "hooks")
        }
        if let seconds = wholeSeconds(alertsTable, ["alerts"], "hook_timeout") {
            configuration.alertHookTimeoutSeconds = seconds
        }
        return configuration
    }

    // MARK: [gateway]

    mutating func gateway(_ section: TOMLTable?) -> GatewayConfiguration {
        let path = ["gateway"]
        var listeners: [GatewayConfiguration.Listener] = []
        if let list = stringArray(section, path, "listen") {
            listeners = self.listeners(list)
        } else if let section, section["listen"] == nil {
            report(path, nil, "missing listen (e.g. listen = [\"127.0.0.1:8480\"] or [\"unix:/run/keyrotd-gateway/api.sock\"])")
        }

        var upstream = GatewayConfiguration.Upstream(scheme: "https", host: "", port: 443, url: "")
        if let text = string(section, path, "upstream") {
            switch Self.upstream(text) {
            case .success(let parsed): upstream = parsed
            case .failure(let problem): report(path, "upstream", problem.message)
            }
        } else if let section, section["upstream"] == nil {
            report(path, nil, "missing upstream (e.g. upstream = \"https://api.mistral.ai\")")
        }

        var currency = ""
        if let text = string(section, path, "currency") {
            if (1...8).contains(text.unicodeScalars.count), text.unicodeScalars.allSatisfy({ $0.isASCII && $0.properties.isAlphabetic }) {
                currency = text
            } else {
                report(path, "currency", "\"\(text)\" is not a currency label: use 1-8 letters, e.g. \"EUR\"")
            }
        } else if let section, section["currency"] == nil {
            report(path, nil, "missing currency (e.g. currency = \"EUR\"): the unit of prices and budgets")
        }

        var configuration = GatewayConfiguration(listeners: listeners, upstream: upstream, currency: currency)
        configuration.adminSocket = socketPath(section, path, "admin_socket")
        if let users = stringArray(section, path, "admin_users") {
            for (index, user) in users.enumerated() where user.isEmpty {
                report(path, "admin_users", "element \(index + 1) is empty (expected a user name)")
            }
            configuration.adminUsers = users
        }
        configuration.stateDirectory = absolutePath(section, path, "state_directory")

        let certificate = absolutePath(section, path, "tls_certificate")
        let key = absolutePath(section, path, "tls_key")
        if let certificate { addCheck(.tlsCertificate, certificate, path, "tls_certificate") }
        if let key { addCheck(.tlsKey, key, path, "tls_key") }
        switch (section?["tls_certificate"], section?["tls_key"]) {
        case (.some, nil): report(path, "tls_certificate", "is set but tls_key is not: TLS needs both")
        case (nil, .some): report(path, "tls_key", "is set but tls_certificate is not: TLS needs both")
        default: break
        }
        if let certificate, let key { configuration.tls = .init(certificate: certificate, key: key) }

        if let bytes = positiveInt(section, path, "max_body_bytes") {
            if bytes > Self.largestBody {
                report(path, "max_body_bytes", "must be at most \(Self.largestBody) (1 GiB), not \(bytes)")
            } else {
                configuration.maxBodyBytes = bytes
            }
        }
        if let seconds = wholeSeconds(section, path, "upstream_timeout") {
            configuration.upstreamTimeoutSeconds = seconds
        }
        return configuration
    }

    mutating func listeners(_ list: [String]) -> [GatewayConfiguration.Listener] {
        let path = ["gateway"]
        if list.isEmpty {
            report(path, "listen", "is empty: the gateway would accept no connection")
        }
        var result: [GatewayConfiguration.Listener] = []
        for (index, text) in list.enumerated() {
            switch Self.listener(text) {
            case .success(let listener):
                if result.contains(listener) {
                    report(path, "listen", "\(listener) is listed twice")
                } else {
                    result.append(listener)
                }
            case .failure(let problem):
                listenersUnknown = true
                report(path, "listen", "element \(index + 1): \(problem.message)")
            }
        }
        return result
    }

    /// `host:port` with an IP address, `[v6]:port`, or `unix:/absolute/path`.
    static func listener(_ text: String) -> Result<GatewayConfiguration.Listener, ValueProblem> {
        let usage = "\"\(text)\" is not an address to listen on: use IP:port (\"127.0.0.1:8480\", \"[::1]:8480\") or unix:/absolute/path"
        if text.hasPrefix("unix:") {
            let socket = String(text.dropFirst(5))
            guard socket.hasPrefix("/") else { return .failure(ValueProblem("\"\(text)\": a unix socket path must be absolute")) }
            guard socket.utf8.count <= longestSocketPath else {
                return .failure(ValueProblem("\"\(text)\": a unix socket path is at most \(longestSocketPath) bytes"))
            }
            return .success(.unix(path: socket))
        }
        guard let colon = text.lastIndex(of: ":") else { return .failure(ValueProblem(usage)) }
        var host = Substring(text[..<colon])
        let portText = text[text.index(after: colon)...]
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = host.dropFirst().dropLast()
            guard isIPv6(host) else { return .failure(ValueProblem(usage)) }
        } else {
            guard LoopbackAddress.ipv4Octets(host) != nil else { return .failure(ValueProblem(usage)) }
        }
        guard (1...5).contains(portText.utf8.count), portText.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              let port = Int(portText), (1...65535).contains(port)
        else {
            return .failure(ValueProblem("\"\(text)\": the port must be a number from 1 to 65535"))
        }
        return .success(.tcp(host: String(host), port: port))
    }

    /// An IPv6 literal's shape (RFC 4291 text: 1-4 hex digit groups, eight of them or
    /// fewer around one "::", an optional dotted-quad tail). The adapter's bind reports
    /// anything this lets through that inet_pton still refuses.
    static func isIPv6(_ text: Substring) -> Bool {
        guard text.contains(":"), text.utf8.count <= 45 else { return false }
        var text = text
        if let lastColon = text.lastIndex(of: ":"), text[lastColon...].contains(".") {
            guard LoopbackAddress.ipv4Octets(text[text.index(after: lastColon)...]) != nil else { return false }
            text = Substring(text[...lastColon] + "0:0")  // the quad counts as two groups
        }
        /// How many groups `part` holds, nil when one is not 1-4 ASCII hex digits.
        func groups(_ part: Substring) -> Int? {
            if part.isEmpty { return 0 }
            let items = part.split(separator: ":", omittingEmptySubsequences: false)
            guard items.allSatisfy({ (1...4).contains($0.utf8.count) && $0.utf8.allSatisfy { $0.hexDigitValue != nil } }) else {
                return nil
            }
            return items.count
        }
        if let gap = text.firstRange(of: "::") {
            guard let head = groups(text[..<gap.lowerBound]), let tail = groups(text[gap.upperBound...]) else { return false }
            return head + tail <= 7
        }
        return groups(text) == 8
    }

    /// `upstream`: keyrotd's rule for a URL a secret travels to, and no path (the
    /// gateway appends the request's own path).
    static func upstream(_ text: String) -> Result<GatewayConfiguration.Upstream, ValueProblem> {
        if let problem = SecretBearingURL.problem(text) { return .failure(ValueProblem(problem)) }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              let host = components.host
        else { return .failure(ValueProblem("\"\(text)\" is not an absolute URL")) }
        guard components.path.isEmpty || components.path == "/" else {
            return .failure(ValueProblem("must be scheme://host[:port] without a path (the request's path is appended)"))
        }
        if let port = components.port, !(1...65535).contains(port) {
            return .failure(ValueProblem("the port must be a number from 1 to 65535"))
        }
        let unbracketed = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let url = text.hasSuffix("/") ? String(text.dropLast()) : text
        return .success(.init(
            scheme: scheme, host: unbracketed, port: components.port ?? (scheme == "https" ? 443 : 80), url: url))
    }

    // MARK: [prices.MODEL], [roles.NAME], [clients.NAME]

    mutating func price(_ model: String, _ section: TOMLTable) -> ModelPrice? {
        let path = ["prices", model]
        checkKeys(section, table: path, allowed: Self.priceKeys, what: "key")
        let input = money(section, path, "input", allowZero: true)
        let output = money(section, path, "output", allowZero: true)
        for key in Self.priceKeys where section[key] == nil {
            report(path, nil, "missing \(key) (the price per million \(key) tokens)")
        }
        guard let input, let output else { return nil }
        return ModelPrice(inputPerMillion: input, outputPerMillion: output)
    }

    /// `pricedModels`: those with a `[prices]` section, even a wrong one (reported there).
    mutating func role(_ name: String, _ section: TOMLTable, pricedModels: Set<String>) -> Role? {
        let path = ["roles", name]
        checkKeys(section, table: path, allowed: Self.roleKeys, what: "key")
        validName(name, path, what: "role")

        var upstreamKey: String?
        if let key = string(section, path, "upstream_key") {
            if ManagedKey.isValidName(key) {
                upstreamKey = key
            } else {
                report(path, "upstream_key", "\"\(key)\" is not a keyrotd key name: use 1-64 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit")
            }
        } else if section["upstream_key"] == nil {
            report(path, nil, "missing upstream_key (the keyrotd key whose secret this role spends)")
        }

        var models: ModelAllowList?
        if let list = stringArray(section, path, "models") {
            models = modelPatterns(list, path)
        } else if section["models"] == nil {
            report(path, nil, "missing models (exact names, \"prefix-*\" or \"*\")")
        }

        let requests = positiveInt(section, path, "requests_per_minute")
        let tokens = positiveInt(section, path, "tokens_per_minute")
        let maxTokens = positiveInt(section, path, "max_tokens")
        let budget = money(section, path, "monthly_budget", allowZero: false)
        let alertAt = percentages(section, path, "alert_at")
        if section["monthly_budget"] != nil && section["max_tokens"] == nil {
            report(path, "monthly_budget", "needs max_tokens: without it a request's cost has no upper bound to reserve")
        }
        if section["alert_at"] != nil && section["monthly_budget"] == nil {
            report(path, "alert_at", "is set but there is no monthly_budget to alert on")
        }
        if budget != nil, let models {
            let unpriced = models.patterns.compactMap { pattern -> String? in
                if case .exact(let model) = pattern, !pricedModels.contains(model) { return model }
                return nil
            }
            if !unpriced.isEmpty {
                problems.append(ConfigProblem(
                    location(path, "models"), path: (path + ["models"]).joined(separator: "."),
                    "no [prices] entry for \(unpriced.joined(separator: ", ")): this budgeted role's requests for "
                        + (unpriced.count == 1 ? "it" : "them") + " will be refused",
                    severity: .warning))
            }
        }

        guard let upstreamKey, let models else { return nil }
        return Role(
            name: name, upstreamKey: upstreamKey, models: models, requestsPerMinute: requests, tokensPerMinute: tokens,
            monthlyBudget: budget, alertAt: alertAt ?? [], maxTokens: maxTokens)
    }

    mutating func modelPatterns(_ list: [String], _ path: [String]) -> ModelAllowList? {
        if list.isEmpty {
            report(path, "models", "is empty: the role could use no model")
            return nil
        }
        var patterns: [ModelAllowList.Pattern] = []
        var ok = true
        for (index, text) in list.enumerated() {
            let stars = text.filter { $0 == "*" }.count
            if text.isEmpty {
                report(path, "models", "element \(index + 1) is empty")
                ok = false
            } else if text == "*" {
                patterns.append(.any)
            } else if stars == 0 {
                patterns.append(.exact(text))
            } else if stars == 1 && text.hasSuffix("*") {
                patterns.append(.prefix(String(text.dropLast())))
            } else {
                report(path, "models", "element \(index + 1): \"\(text)\": \"*\" may only end a pattern (\"mistral-*\") or stand alone")
                ok = false
            }
        }
        return ok ? ModelAllowList(patterns) : nil
    }

    mutating func client(
        _ name: String, _ section: TOMLTable, rolesTable: TOMLTable?, listeners: [GatewayConfiguration.Listener]
    ) -> Client? {
        let path = ["clients", name]
        checkKeys(section, table: path, allowed: Self.clientKeys, what: "key")
        validName(name, path, what: "client")

        let role = string(section, path, "role")
        if let role, rolesTable?[role] == nil {
            let known = (rolesTable?.keys ?? []).sorted().joined(separator: ", ")
            report(path, "role", "no [roles.\(role)] section" + (known.isEmpty ? "" : " (defined: \(known))"))
        } else if role == nil && section["role"] == nil {
            report(path, nil, "missing role (the name of a [roles.NAME] section)")
        }

        let kinds = ["token_sha256", "unix_user", "unix_group"]
        let given = kinds.filter { section[$0] != nil }
        guard given.count == 1, let kind = given.first else {
            if given.isEmpty {
                report(path, nil, "needs one of token_sha256, unix_user or unix_group: how a caller proves it is \(name)")
            } else {
                report(path, given[1], "set one of \(given.joined(separator: ", ")), not several")
            }
            return nil
        }
        var credential: Client.Credential?
        switch kind {
        case "token_sha256":
            if let text = string(section, path, kind) {
                if let digest = Self.sha256Digest(text) {
                    credential = .tokenSHA256(digest)
                } else {
                    // Not quoted: a token pasted here by mistake would be printed.
                    report(path, kind, "must be 64 hexadecimal digits (from `keyrotd-gateway token \(name)`); the value is not shown, in case it is a token")
                }
            }
            if !listenersUnknown && !listeners.isEmpty && !listeners.contains(where: \.isTCP) {
                report(path, kind, "a token client needs a TCP listener in [gateway] listen")
            }
        default:
            if let account = string(section, path, kind) {
                if account.isEmpty {
                    report(path, kind, "is empty")
                } else {
                    credential = kind == "unix_user" ? .unixUser(account) : .unixGroup(account)
                    addCheck(kind == "unix_user" ? .unixUser(account) : .unixGroup(account), account, path, kind)
                }
            }
            if !listenersUnknown && !listeners.isEmpty && listeners.allSatisfy(\.isTCP) {
                report(path, kind, "\(kind) is known only on a unix: listener; [gateway] listen has none")
            }
        }
        guard let role, let credential else { return nil }
        return Client(name: name, role: role, credential: credential)
    }

    /// Two clients with one token would be indistinguishable; reported at the second.
    mutating func duplicateTokens(_ clients: [String: Client]) {
        var owners: [[UInt8]: String] = [:]
        for name in clients.keys.sorted() {
            guard case .tokenSHA256(let digest) = clients[name]?.credential else { continue }
            if let other = owners[digest] {
                report(["clients", name], "token_sha256", "is the same as [clients.\(other)]'s: every client needs its own token")
            } else {
                owners[digest] = name
            }
        }
    }

    static func sha256Digest(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = digits[index].hexDigitValue, let low = digits[index + 1].hexDigitValue else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    // MARK: Values

    /// Role and client names appear in journal lines, status output and `token CLIENT`.
    mutating func validName(_ name: String, _ path: [String], what: String) {
        if !ManagedKey.isValidName(name) {
            report(path, nil, "\"\(name)\" is not a valid \(what) name: use 1-64 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit")
        }
    }

    mutating func positiveInt(_ table: TOMLTable?, _ path: [String], _ key: String) -> Int? {
        guard let value = int(table, path, key) else { return nil }
        guard value > 0 else {
            report(path, key, "must be a positive integer, not \(value)")
            return nil
        }
        return value
    }

    /// A number of `currency` (integer or float), exact to the nano-unit.
    mutating func money(_ table: TOMLTable?, _ path: [String], _ key: String, allowZero: Bool) -> Money? {
        guard let value = table?[key] else { return nil }
        guard let number = value.double ?? value.int.map(Double.init) else {
            report(path, key, "must be a number, not \(value.type)")
            return nil
        }
        guard let money = Money(number), allowZero || money > .zero else {
            report(path, key, allowZero ? "must be a number from 0 to 9000000000, not \(number)" : "must be more than 0 and less than 9000000000, not \(number)")
            return nil
        }
        return money
    }

    /// `alert_at`: whole percentages, strictly ascending, each in 1...100.
    mutating func percentages(_ table: TOMLTable?, _ path: [String], _ key: String) -> [Int]? {
        guard let value = table?[key] else { return nil }
        guard let array = value.array else {
            report(path, key, "must be an array of percentages, e.g. [50, 80, 95]")
            return nil
        }
        var result: [Int] = []
        for element in array {
            guard let percent = element.int, (1...100).contains(percent) else {
                report(path, key, "each percentage must be a whole number from 1 to 100")
                return nil
            }
            result.append(percent)
        }
        if zip(result, result.dropFirst()).contains(where: { $0 >= $1 }) {
            report(path, key, "must be strictly increasing")
            return nil
        }
        return result
    }

    /// A positive duration (keyrotd's syntax, an integer is seconds) in whole seconds.
    mutating func wholeSeconds(_ table: TOMLTable?, _ path: [String], _ key: String) -> Int? {
        guard let span = positiveSpan(table, path, key) else { return nil }
        guard span.milliseconds % 1000 == 0 else {
            report(path, key, "must be whole seconds, not \(span)")
            return nil
        }
        return Int(span.milliseconds / 1000)
    }

    mutating func socketPath(_ table: TOMLTable?, _ path: [String], _ key: String) -> String? {
        guard let text = absolutePath(table, path, key) else { return nil }
        guard text.utf8.count <= Self.longestSocketPath else {
            report(path, key, "a unix socket path is at most \(Self.longestSocketPath) bytes")
            return nil
        }
        return text
    }
}

extension GatewayConfiguration.Listener {
    var isTCP: Bool {
        if case .tcp = self { return true }
        return false
    }
}

/// Why one configuration value is wrong, before it is reported at its key.
struct ValueProblem: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

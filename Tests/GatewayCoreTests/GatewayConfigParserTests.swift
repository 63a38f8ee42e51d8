import GatewayCore
import KeyRotation
import Testing

/// A configuration every rule accepts; each failing case below breaks one rule.
let validGatewayConfig = """
    [gateway]
    listen = ["127.0.0.1:8480", "[::1]:8480", "unix:/run/keyrotd-gateway/api.sock"]
    admin_socket = "/run/keyrotd-gateway/admin.sock"
    admin_users = ["keyrotd", "ops"]
    state_directory = "/var/lib/keyrotd-gateway"
    upstream = "https://api.mistral.ai"
    currency = "EUR"
    tls_certificate = "/etc/keyrotd/gateway.crt"
    tls_key = "/etc/keyrotd/gateway.key"
    max_body_bytes = 1048576
    upstream_timeout = "2min 30s"

    [prices."mistral-small-latest"]
    input = 0.1
    output = 0.3

    [prices.codestral-latest]
    input = 0
    output = 1

    [roles.analyst]
    upstream_key = "dev-team"
    models = ["mistral-small-latest", "codestral-*"]
    requests_per_minute = 60
    tokens_per_minute = 100000
    monthly_budget = 50.0
    alert_at = [50, 80, 95]
    max_tokens = 1024

    [roles.batch]
    upstream_key = "batch.key_2"
    models = ["*"]

    [clients.alice]
    role = "analyst"
    token_sha256 = "00112233445566778899aabbccddeeffFFEEDDCCBBAA99887766554433221100"

    [clients.nightly]
    role = "batch"
    unix_user = "batch"

    [clients.team]
    role = "batch"
    unix_group = "ml"

    [alerts]
    hooks = ["/etc/keyrotd/alerts/page", "/etc/keyrotd/alerts/mail"]
    hook_timeout = 45
    """

/// `validGatewayConfig` with `old` replaced by `new` (which must occur exactly once).
func gatewayMutated(_ old: String, _ new: String) -> String {
    precondition(validGatewayConfig.components(separatedBy: old).count == 2, "\(old) must occur once")
    return validGatewayConfig.replacingOccurrences(of: old, with: new)
}

/// The 1-based line of the first line of `text` containing `fragment`.
func line(of fragment: String, in text: String) -> Int {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    guard let index = lines.firstIndex(where: { $0.contains(fragment) }) else {
        preconditionFailure("\(fragment) not in the text")
    }
    return index + 1
}

func gatewayProblems(_ text: String) -> [String] {
    GatewayConfigParser.parse(text).problems.map { $0.formatted(file: "gateway.toml") }
}

@Suite struct GatewayConfigParserTests {
    @Test func validConfigurationParses() throws {
        let parsed = GatewayConfigParser.parse(validGatewayConfig)
        #expect(parsed.problems == [])
        let config = try #require(parsed.configuration)
        let digest: [UInt8] = [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF,
            0xFF, 0xEE, 0xDD, 0xCC, 0xBB, 0xAA, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00,
        ]
        let expected = GatewayConfiguration(
            listeners: [.tcp(host: "127.0.0.1", port: 8480), .tcp(host: "::1", port: 8480), .unix(path: "/run/keyrotd-gateway/api.sock")],
            adminSocket: "/run/keyrotd-gateway/admin.sock",
            adminUsers: ["keyrotd", "ops"],
            stateDirectory: "/var/lib/keyrotd-gateway",
            upstream: .init(scheme: "https", host: "api.mistral.ai", port: 443, url: "https://api.mistral.ai"),
            currency: "EUR",
            tls: .init(certificate: "/etc/keyrotd/gateway.crt", key: "/etc/keyrotd/gateway.key"),
            maxBodyBytes: 1_048_576,
            upstreamTimeoutSeconds: 150,
            prices: [
                "mistral-small-latest": ModelPrice(inputPerMillion: Money(nanos: 100_000_000), outputPerMillion: Money(nanos: 300_000_000)),
                "codestral-latest": ModelPrice(inputPerMillion: .zero, outputPerMillion: Money(nanos: 1_000_000_000)),
            ],
            roles: [
                "analyst": Role(
                    name: "analyst", upstreamKey: "dev-team",
                    models: ModelAllowList([.exact("mistral-small-latest"), .prefix("codestral-")]),
                    requestsPerMinute: 60, tokensPerMinute: 100_000, monthlyBudget: Money(nanos: 50_000_000_000),
                    alertAt: [50, 80, 95], maxTokens: 1024),
                "batch": Role(name: "batch", upstreamKey: "batch.key_2", models: ModelAllowList([.any])),
            ],
            clients: [
                "alice": Client(name: "alice", role: "analyst", credential: .tokenSHA256(digest)),
                "nightly": Client(name: "nightly", role: "batch", credential: .unixUser("batch")),
                "team": Client(name: "team", role: "batch", credential: .unixGroup("ml")),
            ],
            alertHooks: ["/etc/keyrotd/alerts/page", "/etc/keyrotd/alerts/mail"],
            alertHookTimeoutSeconds: 45)
        #expect(config == expected)
        #expect(config.role(ofClient: "alice")?.name == "analyst")
    }

    @Test func checksForTheAdapterCarryTheirLines() {
        let text = validGatewayConfig
        let checks = GatewayConfigParser.parse(text).checks
        func at(_ fragment: String) -> ConfigProblem.Location { .line(line(of: fragment, in: text), column: nil) }
        #expect(checks == [
            GatewayCheck(kind: .tlsCertificate, value: "/etc/keyrotd/gateway.crt", location: at("tls_certificate"), tomlPath: "gateway.tls_certificate"),
            GatewayCheck(kind: .tlsKey, value: "/etc/keyrotd/gateway.key", location: at("tls_key"), tomlPath: "gateway.tls_key"),
            GatewayCheck(kind: .unixUser("batch"), value: "batch", location: at("unix_user"), tomlPath: "clients.nightly.unix_user"),
            GatewayCheck(kind: .unixGroup("ml"), value: "ml", location: at("unix_group"), tomlPath: "clients.team.unix_group"),
            GatewayCheck(kind: .hook, value: "/etc/keyrotd/alerts/page", location: at("hooks = "), tomlPath: "alerts.hooks"),
            GatewayCheck(kind: .hook, value: "/etc/keyrotd/alerts/mail", location: at("hooks = "), tomlPath: "alerts.hooks"),
        ])
    }

    @Test func defaultsApplyWhenOptionalKeysAreAbsent() throws {
        let text = """
            [gateway]
            listen = ["127.0.0.1:8480"]
            upstream = "http://127.0.0.1:9000/"
            currency = "USD"

            [roles.r]
            upstream_key = "k"
            models = ["mistral-*"]

            [clients.c]
            role = "r"
            token_sha256 = "\(String(repeating: "ab", count: 32))"
            """
        let parsed = GatewayConfigParser.parse(text)
        #expect(parsed.problems == [])
        let config = try #require(parsed.configuration)
        #expect(config.adminSocket == nil && config.stateDirectory == nil && config.tls == nil)
        #expect(config.adminUsers == ["keyrotd"])
        #expect(config.maxBodyBytes == 8 << 20 && config.upstreamTimeoutSeconds == 300 && config.alertHookTimeoutSeconds == 30)
        #expect(config.upstream == .init(scheme: "http", host: "127.0.0.1", port: 9000, url: "http://127.0.0.1:9000"))
        #expect(config.alertHooks == [] && config.prices == [:])
        #expect(parsed.checks == [])
    }

    /// Each case breaks one rule of the valid configuration: (old, new, the fragment
    /// whose line the problem must name, the problem after `gateway.toml:LINE: `).
    static let rules: [(String, String, String, String)] = [
        // unknown keys and tables
        ("currency = \"EUR\"", "currency = \"EUR\"\nlisten_on = 1", "listen_on",
         "gateway.listen_on: unknown key \"listen_on\" in [gateway] (known: listen, admin_socket, admin_users, state_directory, upstream, currency, tls_certificate, tls_key, max_body_bytes, upstream_timeout)"),
        ("[alerts]", "[alert]\nx = 1\n[alerts]", "[alert]",
         "alert: unknown section [alert] (known: gateway, prices, roles, clients, alerts)"),
        ("output = 0.3", "output = 0.3\ncached = 0.01", "cached",
         "prices.mistral-small-latest.cached: unknown key \"cached\" in [prices.mistral-small-latest] (known: input, output)"),
        ("max_tokens = 1024", "max_tokens = 1024\nbudget = 3", "budget = 3",
         "roles.analyst.budget: unknown key \"budget\" in [roles.analyst] (known: upstream_key, models, requests_per_minute, tokens_per_minute, monthly_budget, alert_at, max_tokens)"),
        ("unix_group = \"ml\"", "unix_group = \"ml\"\nuid = 5", "uid",
         "clients.team.uid: unknown key \"uid\" in [clients.team] (known: role, token_sha256, unix_user, unix_group)"),
        ("hook_timeout = 45", "hook_timeout = 45\ntimeout = 1", "timeout = 1",
         "alerts.timeout: unknown key \"timeout\" in [alerts] (known: hooks, hook_timeout)"),
        // listen
        ("listen = [\"127.0.0.1:8480\", \"[::1]:8480\", \"unix:/run/keyrotd-gateway/api.sock\"]", "listen = []", "listen",
         "gateway.listen: is empty: the gateway would accept no connection"),
        ("\"[::1]:8480\"", "\"localhost:8480\"", "listen",
         "gateway.listen: element 2: \"localhost:8480\" is not an address to listen on: use IP:port (\"127.0.0.1:8480\", \"[::1]:8480\") or unix:/absolute/path"),
        ("\"[::1]:8480\"", "\"127.0.0.1\"", "listen",
         "gateway.listen: element 2: \"127.0.0.1\" is not an address to listen on: use IP:port (\"127.0.0.1:8480\", \"[::1]:8480\") or unix:/absolute/path"),
        ("\"[::1]:8480\"", "\"::1:8480\"", "listen",
         "gateway.listen: element 2: \"::1:8480\" is not an address to listen on: use IP:port (\"127.0.0.1:8480\", \"[::1]:8480\") or unix:/absolute/path"),
        ("\"[::1]:8480\"", "\"[::1::2]:8480\"", "listen",
         "gateway.listen: element 2: \"[::1::2]:8480\" is not an address to listen on: use IP:port (\"127.0.0.1:8480\", \"[::1]:8480\") or unix:/absolute/path"),
        ("\"[::1]:8480\"", "\"127.0.0.1:0\"", "listen",
         "gateway.listen: element 2: \"127.0.0.1:0\": the port must be a number from 1 to 65535"),
        ("\"[::1]:8480\"", "\"127.0.0.1:65536\"", "listen",
         "gateway.listen: element 2: \"127.0.0.1:65536\": the port must be a number from 1 to 65535"),
        ("\"[::1]:8480\"", "\"127.0.0.1:+80\"", "listen",
         "gateway.listen: element 2: \"127.0.0.1:+80\": the port must be a number from 1 to 65535"),
        ("\"[::1]:8480\"", "\"127.0.0.1:8480\"", "listen",
         "gateway.listen: 127.0.0.1:8480 is listed twice"),
        ("\"unix:/run/keyrotd-gateway/api.sock\"", "\"unix:run/api.sock\"", "listen",
         "gateway.listen: element 3: \"unix:run/api.sock\": a unix socket path must be absolute"),
        ("\"unix:/run/keyrotd-gateway/api.sock\"", "\"unix:/\(String(repeating: "s", count: 107))\"", "listen",
         "gateway.listen: element 3: \"unix:/\(String(repeating: "s", count: 107))\": a unix socket path is at most 107 bytes"),
        ("listen = [\"127.0.0.1:8480\", \"[::1]:8480\", \"unix:/run/keyrotd-gateway/api.sock\"]", "listen = \"127.0.0.1:8480\"", "listen",
         "gateway.listen: must be an array of strings, not string"),
        ("listen = [\"127.0.0.1:8480\", \"[::1]:8480\", \"unix:/run/keyrotd-gateway/api.sock\"]\n", "", "[gateway]",
         "gateway: missing listen (e.g. listen = [\"127.0.0.1:8480\"] or [\"unix:/run/keyrotd-gateway/api.sock\"])"),
        // upstream: keyrotd's rule for URLs a secret travels to, and no path
        ("upstream = \"https://api.mistral.ai\"", "upstream = \"http://api.mistral.ai\"", "upstream",
         "gateway.upstream: plain http is allowed only for loopback addresses; use https"),
        ("upstream = \"https://api.mistral.ai\"", "upstream = \"http://127.0.0.08:80\"", "upstream",
         "gateway.upstream: plain http is allowed only for loopback addresses; use https"),
        ("upstream = \"https://api.mistral.ai\"", "upstream = \"https://api.mistral.ai/v1\"", "upstream",
         "gateway.upstream: must be scheme://host[:port] without a path (the request's path is appended)"),
        ("upstream = \"https://api.mistral.ai\"", "upstream = \"https://api.mistral.ai?x=1\"", "upstream",
         "gateway.upstream: must not have a query or fragment"),
        ("upstream = \"https://api.mistral.ai\"", "upstream = \"https://user:pw@api.mistral.ai\"", "upstream",
         "gateway.upstream: must not carry credentials in the URL"),
        ("upstream = \"https://api.mistral.ai\"", "upstream = \"ftp://api.mistral.ai\"", "upstream",
         "gateway.upstream: unsupported scheme \"ftp\"; use https"),
        ("upstream = \"https://api.mistral.ai\"", "upstream = \"api.mistral.ai\"", "upstream",
         "gateway.upstream: \"api.mistral.ai\" is not an absolute URL"),
        ("upstream = \"https://api.mistral.ai\"\n", "", "[gateway]",
         "gateway: missing upstream (e.g. upstream = \"https://api.mistral.ai\")"),
        // currency
        ("currency = \"EUR\"", "currency = \"€\"", "currency",
         "gateway.currency: \"€\" is not a currency label: use 1-8 letters, e.g. \"EUR\""),
        ("currency = \"EUR\"\n", "", "[gateway]",
         "gateway: missing currency (e.g. currency = \"EUR\"): the unit of prices and budgets"),
        // paths
        ("admin_socket = \"/run/keyrotd-gateway/admin.sock\"", "admin_socket = \"admin.sock\"", "admin_socket",
         "gateway.admin_socket: \"admin.sock\" is not an absolute path"),
        ("admin_socket = \"/run/keyrotd-gateway/admin.sock\"", "admin_socket = \"/\(String(repeating: "a", count: 107))\"", "admin_socket",
         "gateway.admin_socket: a unix socket path is at most 107 bytes"),
        ("admin_users = [\"keyrotd\", \"ops\"]", "admin_users = [\"keyrotd\", \"\"]", "admin_users",
         "gateway.admin_users: element 2 is empty (expected a user name)"),
        ("state_directory = \"/var/lib/keyrotd-gateway\"", "state_directory = \"var\"", "state_directory",
         "gateway.state_directory: \"var\" is not an absolute path"),
        // TLS: both or neither
        ("tls_key = \"/etc/keyrotd/gateway.key\"\n", "", "tls_certificate",
         "gateway.tls_certificate: is set but tls_key is not: TLS needs both"),
        ("tls_certificate = \"/etc/keyrotd/gateway.crt\"\n", "", "tls_key",
         "gateway.tls_key: is set but tls_certificate is not: TLS needs both"),
        ("tls_key = \"/etc/keyrotd/gateway.key\"", "tls_key = \"gateway.key\"", "tls_key",
         "gateway.tls_key: \"gateway.key\" is not an absolute path"),
        // limits and durations
        ("max_body_bytes = 1048576", "max_body_bytes = 0", "max_body_bytes",
         "gateway.max_body_bytes: must be a positive integer, not 0"),
        ("max_body_bytes = 1048576", "max_body_bytes = 2147483648", "max_body_bytes",
         "gateway.max_body_bytes: must be at most 1073741824 (1 GiB), not 2147483648"),
        ("max_body_bytes = 1048576", "max_body_bytes = 1.5", "max_body_bytes",
         "gateway.max_body_bytes: must be an integer, not floating-point number"),
        ("upstream_timeout = \"2min 30s\"", "upstream_timeout = \"2 fortnights\"", "upstream_timeout",
         "gateway.upstream_timeout: bad duration: unknown unit \"fortnights\" in \"2 fortnights\""),
        ("upstream_timeout = \"2min 30s\"", "upstream_timeout = \"0\"", "upstream_timeout",
         "gateway.upstream_timeout: must be longer than zero"),
        ("upstream_timeout = \"2min 30s\"", "upstream_timeout = \"1500ms\"", "upstream_timeout",
         "gateway.upstream_timeout: must be whole seconds, not 1s 500ms"),
        ("hook_timeout = 45", "hook_timeout = -1", "hook_timeout",
         "alerts.hook_timeout: must not be negative"),
        // prices
        ("input = 0.1", "input = -0.1", "input = -0.1",
         "prices.mistral-small-latest.input: must be a number from 0 to 9000000000, not -0.1"),
        ("output = 0.3", "output = \"0.3\"", "output = \"0.3\"",
         "prices.mistral-small-latest.output: must be a number, not string"),
        ("output = 0.3\n", "", "[prices.\"mistral-small-latest\"]",
         "prices.mistral-small-latest: missing output (the price per million output tokens)"),
        // roles
        ("[roles.batch]", "[roles.\"bad name\"]\nupstream_key = \"k\"\nmodels = [\"*\"]\n[roles.batch]", "[roles.\"bad name\"]",
         "roles.bad name: \"bad name\" is not a valid role name: use 1-64 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit"),
        ("upstream_key = \"dev-team\"", "upstream_key = \"dev team\"", "upstream_key = \"dev team\"",
         "roles.analyst.upstream_key: \"dev team\" is not a keyrotd key name: use 1-64 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit"),
        ("upstream_key = \"dev-team\"\n", "", "[roles.analyst]",
         "roles.analyst: missing upstream_key (the keyrotd key whose secret this role spends)"),
        ("models = [\"*\"]", "models = []", "models = []",
         "roles.batch.models: is empty: the role could use no model"),
        ("models = [\"*\"]", "models = [\"*-latest\"]", "models = [\"*-latest\"]",
         "roles.batch.models: element 1: \"*-latest\": \"*\" may only end a pattern (\"mistral-*\") or stand alone"),
        ("models = [\"*\"]", "models = [\"a\", \"mis*tral*\"]", "models = [\"a\"",
         "roles.batch.models: element 2: \"mis*tral*\": \"*\" may only end a pattern (\"mistral-*\") or stand alone"),
        ("models = [\"*\"]", "models = [\"\"]", "models = [\"\"]",
         "roles.batch.models: element 1 is empty"),
        ("models = [\"*\"]\n", "", "[roles.batch]",
         "roles.batch: missing models (exact names, \"prefix-*\" or \"*\")"),
        ("requests_per_minute = 60", "requests_per_minute = 0", "requests_per_minute",
         "roles.analyst.requests_per_minute: must be a positive integer, not 0"),
        ("tokens_per_minute = 100000", "tokens_per_minute = -5", "tokens_per_minute",
         "roles.analyst.tokens_per_minute: must be a positive integer, not -5"),
        ("max_tokens = 1024", "max_tokens = 0", "max_tokens = 0",
         "roles.analyst.max_tokens: must be a positive integer, not 0"),
        ("monthly_budget = 50.0", "monthly_budget = 0", "monthly_budget",
         "roles.analyst.monthly_budget: must be more than 0 and less than 9000000000, not 0.0"),
        ("monthly_budget = 50.0", "monthly_budget = 1e10", "monthly_budget",
         "roles.analyst.monthly_budget: must be more than 0 and less than 9000000000, not 10000000000.0"),
        ("alert_at = [50, 80, 95]", "alert_at = [50, 50, 95]", "alert_at",
         "roles.analyst.alert_at: must be strictly increasing"),
        ("alert_at = [50, 80, 95]", "alert_at = [0, 80]", "alert_at",
         "roles.analyst.alert_at: each percentage must be a whole number from 1 to 100"),
        ("alert_at = [50, 80, 95]", "alert_at = [50, 101]", "alert_at",
         "roles.analyst.alert_at: each percentage must be a whole number from 1 to 100"),
        ("alert_at = [50, 80, 95]", "alert_at = 50", "alert_at",
         "roles.analyst.alert_at: must be an array of percentages, e.g. [50, 80, 95]"),
        ("max_tokens = 1024\n", "", "monthly_budget",
         "roles.analyst.monthly_budget: needs max_tokens: without it a request's cost has no upper bound to reserve"),
        ("models = [\"*\"]", "models = [\"*\"]\nalert_at = [50]", "alert_at = [50]",
         "roles.batch.alert_at: is set but there is no monthly_budget to alert on"),
        // clients
        ("[clients.team]", "[clients.\"x y\"]\nrole = \"batch\"\nunix_user = \"u\"\n[clients.team]", "[clients.\"x y\"]",
         "clients.x y: \"x y\" is not a valid client name: use 1-64 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit"),
        ("role = \"analyst\"", "role = \"analysts\"", "role = \"analysts\"",
         "clients.alice.role: no [roles.analysts] section (defined: analyst, batch)"),
        ("role = \"analyst\"\n", "", "[clients.alice]",
         "clients.alice: missing role (the name of a [roles.NAME] section)"),
        ("unix_group = \"ml\"", "unix_group = \"ml\"\nunix_user = \"x\"", "unix_group = \"ml\"",
         "clients.team.unix_group: set one of unix_user, unix_group, not several"),
        ("unix_group = \"ml\"\n", "", "[clients.team]",
         "clients.team: needs one of token_sha256, unix_user or unix_group: how a caller proves it is team"),
        ("token_sha256 = \"00112233445566778899aabbccddeeffFFEEDDCCBBAA99887766554433221100\"",
         "token_sha256 = \"00112233445566778899aabbccddeeffFFEEDDCCBBAA9988776655443322110\"", "token_sha256",
         "clients.alice.token_sha256: must be 64 hexadecimal digits (from `keyrotd-gateway token alice`); the value is not shown, in case it is a token"),
        ("token_sha256 = \"00112233445566778899aabbccddeeffFFEEDDCCBBAA99887766554433221100\"",
         "token_sha256 = \"g0112233445566778899aabbccddeeffFFEEDDCCBBAA99887766554433221100\"", "token_sha256",
         "clients.alice.token_sha256: must be 64 hexadecimal digits (from `keyrotd-gateway token alice`); the value is not shown, in case it is a token"),
        ("unix_user = \"batch\"", "unix_user = \"\"", "unix_user",
         "clients.nightly.unix_user: is empty"),
        // alerts
        ("hooks = [\"/etc/keyrotd/alerts/page\", \"/etc/keyrotd/alerts/mail\"]", "hooks = [\"alerts/page\"]", "hooks = ",
         "alerts.hooks: element 1: \"alerts/page\" is not an absolute path"),
        ("hooks = [\"/etc/keyrotd/alerts/page\", \"/etc/keyrotd/alerts/mail\"]", "hooks = [\"/a\", \"/a\"]", "hooks = ",
         "alerts.hooks: /a is listed twice (hooks are tracked by path; run it once)"),
    ]

    @Test(arguments: rules)
    func eachRuleIsReportedAtItsLine(old: String, new: String, fragment: String, problem: String) {
        let text = gatewayMutated(old, new)
        let parsed = GatewayConfigParser.parse(text)
        let expected = "gateway.toml:\(line(of: fragment, in: text)): \(problem)"
        #expect(parsed.problems.map { $0.formatted(file: "gateway.toml") } == [expected])
        #expect(parsed.configuration == nil)
    }

    @Test func everyProblemIsReportedAtOnce() {
        let text = gatewayMutated("currency = \"EUR\"", "currency = \"\"")
            .replacingOccurrences(of: "requests_per_minute = 60", with: "requests_per_minute = 0")
            .replacingOccurrences(of: "role = \"analyst\"", with: "role = \"nobody\"")
        let problems = gatewayProblems(text)
        #expect(problems.count == 3)
        #expect(problems.contains { $0.contains("gateway.currency:") })
        #expect(problems.contains { $0.contains("roles.analyst.requests_per_minute:") })
        #expect(problems.contains { $0.contains("clients.alice.role:") })
    }

    @Test func unpricedExactModelsOfABudgetedRoleAreAWarning() throws {
        let text = gatewayMutated("models = [\"mistral-small-latest\", \"codestral-*\"]", "models = [\"mistral-small-latest\", \"mistral-large-latest\", \"open-*\", \"pixtral\"]")
        let parsed = GatewayConfigParser.parse(text)
        #expect(parsed.problems.map { $0.formatted(file: "gateway.toml") } == [
            "gateway.toml:\(line(of: "mistral-large-latest", in: text)): warning: roles.analyst.models: no [prices] entry for mistral-large-latest, pixtral: this budgeted role's requests for them will be refused",
        ])
        #expect(parsed.problems.first?.severity == .warning)
        #expect(parsed.configuration != nil, "a warning is not fatal")
        // Without a budget, prices do not matter.
        let batch = GatewayConfigParser.parse(gatewayMutated("models = [\"*\"]", "models = [\"unpriced\"]"))
        #expect(batch.problems == [])
    }

    @Test func credentialsNeedTheirKindOfListener() {
        let tcpOnly = gatewayMutated(", \"unix:/run/keyrotd-gateway/api.sock\"", "")
        #expect(gatewayProblems(tcpOnly) == [
            "gateway.toml:\(line(of: "unix_user", in: tcpOnly)): clients.nightly.unix_user: unix_user is known only on a unix: listener; [gateway] listen has none",
            "gateway.toml:\(line(of: "unix_group", in: tcpOnly)): clients.team.unix_group: unix_group is known only on a unix: listener; [gateway] listen has none",
        ])
        let unixOnly = gatewayMutated("\"127.0.0.1:8480\", \"[::1]:8480\", ", "")
        #expect(gatewayProblems(unixOnly) == [
            "gateway.toml:\(line(of: "token_sha256", in: unixOnly)): clients.alice.token_sha256: a token client needs a TCP listener in [gateway] listen",
        ])
    }

    @Test func twoClientsCannotShareAToken() {
        let text = gatewayMutated("unix_group = \"ml\"", "token_sha256 = \"00112233445566778899AABBCCDDEEFFffeeddccbbaa99887766554433221100\"")
        #expect(gatewayProblems(text) == [
            "gateway.toml:\(line(of: "00112233445566778899AABB", in: text)): clients.team.token_sha256: is the same as [clients.alice]'s: every client needs its own token",
        ])
    }

    @Test func aSectionMustBeATable() {
        let text = "alerts = 1\n" + validGatewayConfig.components(separatedBy: "[alerts]")[0]
        #expect(gatewayProblems(text) == ["gateway.toml:1: alerts: must be a table ([alerts])"])
    }

    @Test func withoutClientsOrGatewayTheFileIsRefused() {
        #expect(gatewayProblems("") == [
            "gateway.toml: no [gateway] section: listen, upstream and currency are needed",
            "gateway.toml: no [clients.NAME] section: nobody could use the gateway",
        ])
    }

    @Test func tomlSyntaxErrorsCarryLineAndColumn() {
        let problems = gatewayProblems("[gateway]\nlisten = [\"a\"\n")
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("gateway.toml:2:15: TOML syntax error: ") == true, "\(problems)")
        #expect(gatewayProblems("[gateway]\n[!]\n") == ["gateway.toml:2:2: TOML syntax error: a table header must start with a key (bare or quoted), saw '!'"])
    }

    @Test(arguments: [
        ("[::1]:1", "::1"), ("[::]:1", "::"), ("[fe80::1:2]:1", "fe80::1:2"), ("[::ffff:10.0.0.1]:1", "::ffff:10.0.0.1"),
        ("[1:2:3:4:5:6:7:8]:1", "1:2:3:4:5:6:7:8"), ("[1::]:1", "1::"), ("[1:2:3:4:5:6::7]:1", "1:2:3:4:5:6::7"),
        ("[1:2:3:4:5:6:1.2.3.4]:1", "1:2:3:4:5:6:1.2.3.4"), ("0.0.0.0:80", "0.0.0.0"), ("10.1.2.3:65535", "10.1.2.3"),
    ])
    func listenAddressesThatParse(text: String, host: String) throws {
        let config = try #require(GatewayConfigParser.parse(gatewayMutated("\"[::1]:8480\"", "\"\(text)\"")).configuration)
        #expect(config.listeners[1].description == text)
        if case .tcp(let parsedHost, _) = config.listeners[1] { #expect(parsedHost == host) }
    }

    @Test(arguments: ["[1:2:3:4:5:6:7:8:9]:1", "[12345::]:1", "[1:2:3:4:5:6:7]:1", "[::g]:1", "[::1.2.3]:1", "[]:1", "[1:::2]:1", "[:1::2]:1", "[1::2::3]:1", "[1:2:3:4:5:6:7:8::]:1", "[\u{FF11}::]:1", "[::1.2.3.4.5]:1", "1.2.3.4.5:1", "01.2.3.4:1", ":80"])
    func listenAddressesThatDoNot(text: String) {
        let problems = gatewayProblems(gatewayMutated("\"[::1]:8480\"", "\"\(text)\""))
        #expect(problems.count == 1 && problems.first?.contains("is not an address to listen on") == true, "\(problems)")
    }

    @Test func loopbackUpstreamsMayUsePlainHTTP() throws {
        for (url, host, port) in [("http://localhost:8080", "localhost", 8080), ("http://[::1]:9", "::1", 9), ("http://127.1.2.3", "127.1.2.3", 80),
                                   ("https://mistral.example:8443/", "mistral.example", 8443)] {
            let config = try #require(GatewayConfigParser.parse(gatewayMutated("\"https://api.mistral.ai\"", "\"\(url)\"")).configuration, "\(url)")
            #expect(config.upstream.host == host && config.upstream.port == port, "\(url)")
            #expect(!config.upstream.url.hasSuffix("/"))
        }
    }
}

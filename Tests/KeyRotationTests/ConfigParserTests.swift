import Foundation
import Testing
@testable import KeyRotation

/// A configuration every rule accepts; each failing case below breaks one rule.
let validConfig = """
    [daemon]
    state_file = "/var/lib/keyrotd/state.json"

    [defaults]
    rotate_every = "90d"
    overlap = "24h"
    jitter = "6h"
    hook_timeout = "2min"
    window = "Mon..Fri 09:00..17:00"

    [audit]
    every = "1d"

    [budget]
    thresholds = [50, 80, 95]

    [providers.mistral]
    type = "mistral"
    base_url = "https://api.mistral.ai"
    admin_key_credential = "mistral-admin-key"

    [keys.dev-team]
    provider = "mistral"
    workspace = "7f1e0c3a-1111-4222-8333-444455556666"
    user = "b52d9e10-1111-4222-8333-444455556666"
    hooks = ["/etc/keyrotd/hooks.d/write-env-file"]

    [keys.ml-team]
    provider = "mistral"
    workspace = "7f1e0c3a-1111-4222-8333-444455556666"
    user = "b52d9e10-1111-4222-8333-444455556666"
    hooks = ["/etc/keyrotd/hooks.d/write-env-file", "/etc/keyrotd/hooks.d/k8s"]
    rotate_every = "30d"
    overlap = "1h 30min"
    """

/// `validConfig` with `old` replaced by `new` (which must occur exactly once).
func mutated(_ old: String, _ new: String) -> String {
    precondition(validConfig.components(separatedBy: old).count == 2, "\(old) must occur once")
    return validConfig.replacingOccurrences(of: old, with: new)
}

@Suite struct ConfigParserTests {
    @Test func validConfigurationParses() throws {
        let parsed = ConfigParser.parse(validConfig)
        #expect(parsed.problems == [])
        let config = try #require(parsed.configuration)
        #expect(config.keys.map(\.name) == ["dev-team", "ml-team"])
        let dev = try #require(config.key(named: "dev-team"))
        #expect(dev.policy.rotateEvery == .days(90))
        #expect(dev.policy.overlap == .hours(24))
        #expect(dev.policy.window?.description == "Mon..Fri 09:00..17:00")
        let ml = try #require(config.key(named: "ml-team"))
        #expect(ml.policy.rotateEvery == .days(30))
        #expect(ml.policy.overlap == .minutes(90))
        #expect(ml.policy.jitter == .hours(6), "inherits [defaults]")
        #expect(config.providers["mistral"]?.adminKey == .credential("mistral-admin-key"))
        #expect(config.budget.thresholds == [50, 80, 95])
        #expect(config.daemon.stateFile == "/var/lib/keyrotd/state.json")
        #expect(parsed.fileChecks.map(\.path) == [
            "mistral-admin-key", "/etc/keyrotd/hooks.d/write-env-file",
            "/etc/keyrotd/hooks.d/write-env-file", "/etc/keyrotd/hooks.d/k8s",
        ])
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var rule: String
        var text: String
        /// Each must appear in the one problem reported.
        var mentions: [String]
        /// The line the problem must point at.
        var line: Int?
        var testDescription: String { rule }
    }

    static let failing: [Case] = [
        Case(rule: "TOML syntax", text: mutated("jitter = \"6h\"", "jitter = \"6h"), mentions: ["TOML syntax"], line: 7),
        Case(rule: "unknown section", text: validConfig + "\n[extras]\nx = 1\n", mentions: ["unknown section [extras]"], line: 35),
        Case(rule: "unknown key in a section", text: mutated("jitter = \"6h\"", "jitter = \"6h\"\njitterr = \"1h\""),
             mentions: ["defaults.jitterr", "unknown key \"jitterr\""], line: 8),
        Case(rule: "unknown key in a key section", text: mutated("overlap = \"1h 30min\"", "overlap = \"1h 30min\"\nscope = \"x\""),
             mentions: ["keys.ml-team.scope", "unknown key"], line: 35),
        Case(rule: "bad duration", text: mutated("rotate_every = \"90d\"", "rotate_every = \"90 dayz\""),
             mentions: ["defaults.rotate_every", "bad duration"], line: 5),
        Case(rule: "duration of the wrong type", text: mutated("hook_timeout = \"2min\"", "hook_timeout = true"),
             mentions: ["defaults.hook_timeout", "duration"], line: 8),
        Case(rule: "zero rotation interval", text: mutated("rotate_every = \"30d\"", "rotate_every = \"0\""),
             mentions: ["keys.ml-team.rotate_every", "longer than zero"], line: 33),
        Case(rule: "overlap not shorter than the interval", text: mutated("overlap = \"1h 30min\"", "overlap = \"30d\""),
             mentions: ["keys.ml-team.overlap", "shorter than rotate_every"], line: 34),
        Case(rule: "jitter too large", text: mutated("overlap = \"1h 30min\"", "overlap = \"1h 30min\"\njitter = \"8d\""),
             mentions: ["keys.ml-team.jitter", "jitter (8d) must be at most a quarter of rotate_every (7d 12h)"], line: 35),
        Case(rule: "bad window", text: mutated("window = \"Mon..Fri 09:00..17:00\"", "window = \"Mon..Fry 09:00..17:00\""),
             mentions: ["defaults.window"], line: 9),
        Case(rule: "unknown provider type", text: mutated("type = \"mistral\"", "type = \"openai\""),
             mentions: ["providers.mistral.type", "unknown provider type \"openai\""], line: 18),
        Case(rule: "plain http to a remote host", text: mutated("https://api.mistral.ai", "http://api.mistral.ai"),
             mentions: ["providers.mistral.base_url", "loopback"], line: 19),
        Case(rule: "not a URL", text: mutated("https://api.mistral.ai", "api.mistral.ai"),
             mentions: ["providers.mistral.base_url", "not an absolute URL"], line: 19),
        Case(rule: "no admin key source", text: mutated("admin_key_credential = \"mistral-admin-key\"", ""),
             mentions: ["providers.mistral", "admin_key_credential"], line: 17),
        Case(rule: "two admin key sources", text: mutated("admin_key_credential = \"mistral-admin-key\"",
                                                        "admin_key_credential = \"k\"\nadmin_key_file = \"/etc/k\""),
             mentions: ["providers.mistral.admin_key_file", "not both"], line: 21),
        Case(rule: "relative admin key file", text: mutated("admin_key_credential = \"mistral-admin-key\"", "admin_key_file = \"k\""),
             mentions: ["providers.mistral.admin_key_file", "absolute"], line: 20),
        Case(rule: "key names a missing provider", text: mutated("[keys.dev-team]\nprovider = \"mistral\"", "[keys.dev-team]\nprovider = \"mistrall\""),
             mentions: ["keys.dev-team.provider", "no [providers.mistrall] section (defined: mistral)"], line: 23),
        Case(rule: "empty adopt id", text: mutated("hooks = [\"/etc/keyrotd/hooks.d/write-env-file\"]\n",
                                                       "hooks = [\"/etc/keyrotd/hooks.d/write-env-file\"]\nadopt = \"\"\n"),
             mentions: ["keys.dev-team.adopt", "empty"], line: 27),
        Case(rule: "relative hook path", text: mutated("hooks = [\"/etc/keyrotd/hooks.d/write-env-file\"]\n",
                                                     "hooks = [\"hooks.d/write-env-file\"]\n"),
             mentions: ["keys.dev-team.hooks", "not an absolute path"], line: 26),
        Case(rule: "no hooks", text: mutated("hooks = [\"/etc/keyrotd/hooks.d/write-env-file\"]\n", "hooks = []\n"),
             mentions: ["keys.dev-team.hooks", "no consumer"], line: 26),
        Case(rule: "bad key name", text: mutated("[keys.dev-team]", "[keys.\"dev team\"]"),
             mentions: ["dev team", "not a valid key name"], line: 22),
        Case(rule: "bad thresholds", text: mutated("thresholds = [50, 80, 95]", "thresholds = [80, 50]"),
             mentions: ["budget.thresholds", "increasing"], line: 15),
        Case(rule: "zero overlap", text: mutated("overlap = \"1h 30min\"", "overlap = \"0\""),
             mentions: ["keys.ml-team.overlap", "longer than zero"], line: 34),
        Case(rule: "absurdly long duration", text: mutated("rotate_every = \"90d\"", "rotate_every = \"90y\""),
             mentions: ["defaults.rotate_every", "longer than keyrotd allows (3650d)"], line: 5),
        Case(rule: "a hook listed twice", text: mutated("hooks = [\"/etc/keyrotd/hooks.d/write-env-file\"]\n",
                                                      "hooks = [\"/etc/keyrotd/hooks.d/write-env-file\", \"/etc/keyrotd/hooks.d/write-env-file\"]\n"),
             mentions: ["keys.dev-team.hooks", "listed twice"], line: 26),
        Case(rule: "one key adopted twice", text: mutated("hooks = [\"/etc/keyrotd/hooks.d/write-env-file\"]\n", "hooks = [\"/etc/keyrotd/hooks.d/write-env-file\"]\nadopt = \"k1\"\n")
                .replacingOccurrences(of: "overlap = \"1h 30min\"", with: "overlap = \"1h 30min\"\nadopt = \"k1\""),
             mentions: ["keys.ml-team.adopt", "already adopted by [keys.dev-team]"], line: 36),
        Case(rule: "relative state file", text: mutated("state_file = \"/var/lib/keyrotd/state.json\"", "state_file = \"state.json\""),
             mentions: ["daemon.state_file", "absolute"], line: 2),
    ]

    @Test(arguments: failing)
    func eachRuleReportsItsPlace(_ c: Case) throws {
        let parsed = ConfigParser.parse(c.text)
        #expect(parsed.configuration == nil)
        let errors = parsed.problems.filter { $0.severity == .error }
        try #require(errors.count == 1, "\(errors.map(\.description))")
        let line = errors[0].formatted(file: "keyrotd.toml")
        for mention in c.mentions {
            #expect(line.contains(mention), "\(line)")
        }
        if let expected = c.line {
            #expect(line.hasPrefix("keyrotd.toml:\(expected):"), "\(line)")
        }
    }

    @Test func theInstanceIsOptionalAndNamedLikeAKey() throws {
        #expect(try #require(ConfigParser.parse(validConfig).configuration).daemon.instance == nil)
        let named = ConfigParser.parse(mutated("[daemon]\n", "[daemon]\ninstance = \"prod-eu.1\"\n"))
        #expect(named.problems == [])
        #expect(named.configuration?.daemon.instance == "prod-eu.1")
        for bad in ["", "-prod", "prod/eu", "pröd", String(repeating: "a", count: 33)] {
            let parsed = ConfigParser.parse(mutated("[daemon]\n", "[daemon]\ninstance = \"\(bad)\"\n"))
            #expect(parsed.configuration == nil, "\(bad)")
            #expect(parsed.problems.map { $0.formatted(file: "f") }
                == ["f:2: daemon.instance: \"\(bad)\" is not a valid instance name: use 1-32 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit"])
        }
        #expect(ConfigParser.parse(mutated("[daemon]\n", "[daemon]\ninstance = 7\n")).problems.map(\.path) == ["daemon.instance"])
    }

    @Test func workspaceMustBeAUUID() {
        let parsed = ConfigParser.parse(mutated(
            "workspace = \"7f1e0c3a-1111-4222-8333-444455556666\"\nuser = \"b52d9e10-1111-4222-8333-444455556666\"\nhooks = [\"/etc/keyrotd/hooks.d/write-env-file\"]\n",
            "workspace = \"ws-1\"\nuser = \"b52d9e10-1111-4222-8333-444455556666\"\nhooks = [\"/etc/keyrotd/hooks.d/write-env-file\"]\n"))
        #expect(parsed.problems.map { $0.formatted(file: "f") } == ["f:24: keys.dev-team.workspace: \"ws-1\" is not a UUID"])
    }

    @Test func everyProblemIsReportedNotJustTheFirst() {
        let text = validConfig
            .replacingOccurrences(of: "jitter = \"6h\"", with: "jitter = \"6 hourz\"")
            .replacingOccurrences(of: "https://api.mistral.ai", with: "http://example.com")
            .replacingOccurrences(of: "overlap = \"1h 30min\"", with: "overlap = \"31d\"\ncolour = \"blue\"")
        let parsed = ConfigParser.parse(text)
        let paths = Set(parsed.problems.compactMap(\.path))
        #expect(paths == ["defaults.jitter", "providers.mistral.base_url", "keys.ml-team.overlap", "keys.ml-team.colour"])
    }

    @Test(arguments: ["http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:8080", "http://127.3.2.1", "https://api.mistral.ai"])
    func loopbackMayUsePlainHTTP(url: String) {
        let parsed = ConfigParser.parse(mutated("https://api.mistral.ai", url))
        #expect(parsed.problems == [])
    }

    @Test(arguments: ["http://10.0.0.1", "http://128.0.0.1", "http://localhost.example.com", "ftp://127.0.0.1", "https://user:pw@api.mistral.ai"])
    func otherURLsAreRefused(url: String) {
        let parsed = ConfigParser.parse(mutated("https://api.mistral.ai", url))
        #expect(parsed.problems.map(\.path) == ["providers.mistral.base_url"])
    }

    @Test func aKeyOverrideIsCheckedAgainstTheMergedPolicy() {
        let parsed = ConfigParser.parse(mutated("rotate_every = \"30d\"", "rotate_every = \"1h\""))
        // ml-team sets rotate_every itself: the inherited jitter (6h) breaks the rule at its rotate_every.
        #expect(parsed.problems.map(\.path) == ["keys.ml-team.overlap", "keys.ml-team.rotate_every"])
    }

    @Test func aRuleBrokenByTheDefaultsAloneIsReportedOnceThere() {
        let parsed = ConfigParser.parse(mutated("overlap = \"24h\"", "overlap = \"100d\""))
        // ml-team sets its own overlap, so only dev-team inherits the broken one: reported at [defaults] only.
        #expect(parsed.problems.map(\.path) == ["defaults.overlap"])
    }

    @Test func fileChecksAreCollectedEvenWhenOtherThingsAreWrong() {
        let parsed = ConfigParser.parse(mutated("rotate_every = \"90d\"", "rotate_every = \"soon\""))
        #expect(parsed.configuration == nil)
        #expect(parsed.fileChecks.filter { $0.kind == .hook }.count == 3)
    }

    /// Values echoed into a problem could break its line (a key, a path, a duration
    /// with "\n" in it) or hide what they hold (U+202E); found by `ConfigFuzzTests`.
    @Test func aProblemStaysOnOneLineWhateverTheValueHolds() {
        let parsed = ConfigParser.parse(mutated("jitter = \"6h\"", "jitter = \"6h\\nbogus\"\n\"bad\\u202Ekey\" = 1"))
        let lines = parsed.problems.map { $0.formatted(file: "f") }
        #expect(lines.count == 2)
        #expect(lines.contains { $0.hasPrefix("f:4: defaults.bad\\u{202E}key: unknown key \"bad\\u{202E}key\" in [defaults]") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("f:7: defaults.jitter: bad duration:") && $0.contains("6h\\nbogus") }, "\(lines)")
        #expect(!lines.contains { $0.contains(where: \.isNewline) || $0.unicodeScalars.contains("\u{202E}") })
    }

    @Test func noKeysIsAProblem() {
        let text = String(validConfig[..<validConfig.range(of: "[keys.dev-team]")!.lowerBound])
        #expect(ConfigParser.parse(text).problems.map(\.message) == ["no [keys.NAME] section: there is nothing to rotate"])
    }

    @Test func keyLifetimeCoversIntervalJitterOverlapAndMargin() {
        let policy = KeyPolicy.standard
        #expect(policy.keyLifetime == .days(90) + .hours(6) + .days(7) + .days(9))
    }
}

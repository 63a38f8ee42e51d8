import Testing
@testable import KeyRotation

/// `[providers.NAME]` proxy, proxy_credentials_file, ca_file and ca_mode.
@Suite struct EgressConfigTests {
    static func config(_ lines: String, baseURL: String = "https://api.mistral.ai") -> String {
        mutated("base_url = \"https://api.mistral.ai\"", "base_url = \"\(baseURL)\"\n" + lines)
    }

    @Test func aFullEgressSectionParses() throws {
        let parsed = ConfigParser.parse(Self.config("""
            proxy = "http://proxy.corp.example:3128"
            ca_file = "/etc/keyrotd/corp-ca.pem"
            ca_mode = "replace"
            """))
        #expect(parsed.problems == [])
        let egress = try #require(parsed.configuration?.providers["mistral"]?.egress)
        #expect(egress == EgressSettings(proxy: "http://proxy.corp.example:3128", caFile: "/etc/keyrotd/corp-ca.pem", caMode: .replace))
        #expect(parsed.fileChecks.contains(FileCheck(kind: .certificateBundle, path: "/etc/keyrotd/corp-ca.pem", location: .line(21, column: nil), tomlPath: "providers.mistral.ca_file")))
    }

    @Test func withoutEgressKeysTheProviderGoesDirectWithTheSystemStore() throws {
        let egress = try #require(ConfigParser.parse(validConfig).configuration?.providers["mistral"]?.egress)
        #expect(egress == EgressSettings())
        #expect(egress.caMode == .add)
    }

    @Test func credentialsGoOverHTTPSOrToLoopbackOnly() throws {
        for proxy in ["https://proxy.corp.example:8443", "http://127.0.0.1:3128"] {
            let parsed = ConfigParser.parse(Self.config("""
                proxy = "\(proxy)"
                proxy_credentials_file = "/etc/keyrotd/proxy-credentials"
                """))
            #expect(parsed.problems == [], "\(proxy)")
            #expect(parsed.configuration?.providers["mistral"]?.egress.proxyCredentialsFile == "/etc/keyrotd/proxy-credentials")
            #expect(parsed.fileChecks.contains { $0.kind == .secretFile(secret: "proxy credentials") && $0.tomlPath == "providers.mistral.proxy_credentials_file" })
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var rule: String
        var lines: String
        var baseURL = "https://api.mistral.ai"
        var path: String
        var mentions: String
        var line: Int
        var testDescription: String { rule }
    }

    static let cases = [
        Case(rule: "credentials in the proxy URL", lines: "proxy = \"http://user:pw@proxy.corp:3128\"",
             path: "providers.mistral.proxy", mentions: "proxy_credentials_file", line: 20),
        Case(rule: "socks proxy", lines: "proxy = \"socks5://proxy.corp:1080\"",
             path: "providers.mistral.proxy", mentions: "unsupported proxy scheme \"socks5\"", line: 20),
        Case(rule: "proxy without a port", lines: "proxy = \"http://proxy.corp\"",
             path: "providers.mistral.proxy", mentions: "port explicitly", line: 20),
        Case(rule: "proxy with a path", lines: "proxy = \"http://proxy.corp:3128/x\"",
             path: "providers.mistral.proxy", mentions: "without a path", line: 20),
        Case(rule: "proxy not a URL", lines: "proxy = \"proxy.corp:3128\"",
             path: "providers.mistral.proxy", mentions: "not an absolute URL", line: 20),
        Case(rule: "plain-http base_url through a proxy", lines: "proxy = \"http://proxy.corp:3128\"", baseURL: "http://127.0.0.1:8080",
             path: "providers.mistral.proxy", mentions: "plain-http base_url does not go through a proxy", line: 20),
        Case(rule: "credentials to a remote http proxy", lines: "proxy = \"http://proxy.corp:3128\"\nproxy_credentials_file = \"/etc/p\"",
             path: "providers.mistral.proxy_credentials_file", mentions: "clear text", line: 21),
        Case(rule: "credentials without a proxy", lines: "proxy_credentials_file = \"/etc/p\"",
             path: "providers.mistral.proxy_credentials_file", mentions: "no proxy", line: 20),
        Case(rule: "relative credentials file", lines: "proxy = \"https://proxy.corp:3128\"\nproxy_credentials_file = \"p\"",
             path: "providers.mistral.proxy_credentials_file", mentions: "absolute path", line: 21),
        Case(rule: "relative ca_file", lines: "ca_file = \"corp.pem\"",
             path: "providers.mistral.ca_file", mentions: "absolute path", line: 20),
        Case(rule: "unknown ca_mode", lines: "ca_file = \"/etc/corp.pem\"\nca_mode = \"merge\"",
             path: "providers.mistral.ca_mode", mentions: "\"add\"", line: 21),
        Case(rule: "ca_mode without ca_file", lines: "ca_mode = \"replace\"",
             path: "providers.mistral.ca_mode", mentions: "no ca_file", line: 20),
    ]

    @Test(arguments: cases) func eachRuleReportsItsPlace(_ c: Case) {
        let parsed = ConfigParser.parse(Self.config(c.lines, baseURL: c.baseURL))
        #expect(parsed.configuration == nil)
        #expect(parsed.problems.map(\.path) == [c.path], "\(parsed.problems)")
        let problem = parsed.problems.first
        #expect(problem?.message.contains(c.mentions) == true, "\(String(describing: problem?.message))")
        #expect(problem?.location == .line(c.line, column: nil))
    }
}

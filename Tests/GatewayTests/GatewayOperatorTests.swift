import Foundation
import Glibc
import TestSupport
import Testing

/// What an operator does: check the configuration, mint a token, reload, hand a key over.
@Suite(.serialized) struct GatewayOperatorTests {
    @Test func checkConfigListsEveryProblemWithItsLineAndExits78() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let config = try scratch.write("gateway.toml", """
            [gateway]
            listen = ["127.0.0.1:8480"]
            upstream = "http://example.com"
            currency = "EUR"
            state_directory = "\(scratch.file("state"))"
            admin_socket = "\(scratch.file("admin.sock"))"

            [roles.analyst]
            upstream_key = "dev-team"
            models = ["mistral-small-latest"]
            monthly_budget = 10.0

            [clients.alice]
            role = "nobody-has-this-role"
            token_sha256 = "abc"

            """, mode: 0o600)
        let result = try runTool(gatewayBinary, ["check-config", "--config", config], environment: ["PATH": "/usr/bin:/bin"])
        #expect(result.status == 78, "\(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("\(config):3:") && $0.contains("upstream") }, "\(result.output)")
        #expect(lines.contains { $0.hasPrefix("\(config):") && $0.contains("max_tokens") }, "\(result.output)")
        #expect(lines.contains { $0.hasPrefix("\(config):14:") && $0.contains("role") }, "\(result.output)")
        #expect(lines.contains { $0.hasPrefix("\(config):15:") && $0.contains("token_sha256") }, "\(result.output)")
    }

    @Test func aMintedTokenAuthenticatesAndIsNeverStored() async throws {
        let fixture = try GatewayFixture(
            roles: [TestRole(name: "analyst", upstreamKey: "dev-team", models: ["mistral-small-latest"])],
            clients: [("alice", "analyst")])
        let minted = try runTool(gatewayBinary, ["token", "carol"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(minted.status == 0)
        let lines = minted.output.split(separator: "\n").map(String.init)
        let token = try #require(lines.first { $0.hasPrefix("krg_") })
        let hashLine = try #require(lines.first { $0.hasPrefix("token_sha256 = ") })
        #expect(hashLine == "token_sha256 = \"\(sha256Hex(token))\"")
        fixture.extraClients = "\n[clients.carol]\nrole = \"analyst\"\n\(hashLine)\n"
        try fixture.rewriteConfig()
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        let answer = try await fixture.request("/v1/models", method: .GET, client: nil, bearer: token)
        #expect(answer.status == 200, "\(answer.text)")
        let stored = try String(contentsOfFile: fixture.configPath, encoding: .utf8)
        #expect(!stored.contains(token))
        #expect(!fixture.log().contains(token))
    }

    @Test func sighupAppliesAValidConfigurationAndKeepsTheRunningOneOverAnInvalidOne() async throws {
        let fixture = try GatewayFixture(
            roles: [TestRole(name: "analyst", upstreamKey: "dev-team", models: ["mistral-small-latest"])],
            clients: [("alice", "analyst")])
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        #expect(try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-large-latest")).status == 403)

        // Invalid: the gateway says why and keeps serving with what it had.
        let valid = try String(contentsOfFile: fixture.configPath, encoding: .utf8)
        try fixture.scratch.write("gateway.toml", valid + "\n[roles.broken]\nmodels = 3\n", mode: 0o600)
        fixture.process?.signal(SIGHUP)
        #expect(try await waitFor(seconds: 10) { fixture.log().contains("configuration not reloaded") })
        #expect(fixture.log().contains("gateway.toml:"))
        #expect(try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-small-latest")).status == 200)

        // Valid: the analyst may now use mistral-large-latest, at once.
        fixture.roles[0].models.append("mistral-large-latest")
        try fixture.rewriteConfig()
        fixture.process?.signal(SIGHUP)
        #expect(try await waitFor(seconds: 10) { fixture.log().contains("configuration reloaded") })
        #expect(try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-large-latest")).status == 200)
    }

    @Test func setKeyWithoutARunningGatewayFailsWith69AndKeepsTheSecretOutOfItsOutput() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let secret = "secret-that-must-not-show-\(UUID().uuidString)"
        let result = try runTool(
            gatewayBinary, ["set-key", "dev-team", "--socket", scratch.file("missing.sock")], stdin: secret + "\n",
            environment: ["PATH": "/usr/bin:/bin", "KEYROTD_KEY_ID": "k1", "KEYROTD_GENERATION": "3"])
        #expect(result.status == 69, "\(result.output)")
        #expect(!result.output.contains(secret))
        let empty = try runTool(
            gatewayBinary, ["set-key", "dev-team", "--socket", scratch.file("missing.sock")], stdin: "\n",
            environment: ["PATH": "/usr/bin:/bin"])
        #expect(empty.status == 65, "\(empty.output)")
    }

    @Test func aRestartResumesWithTheLastKeyItWasGiven() async throws {
        let fixture = try GatewayFixture(
            roles: [TestRole(name: "analyst", upstreamKey: "dev-team", models: ["mistral-small-latest"])],
            clients: [("alice", "analyst")])
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        let second = try await fixture.deliverNewKey("dev-team", generation: 2)
        await fixture.kill()
        let keysFile = fixture.scratch.file("state/keys.state")
        var info = stat()
        #expect(stat(keysFile, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        try await fixture.start()
        let role = try fixture.roleStatus("analyst")
        #expect(role["upstream_key_id"] as? String == second.id)
        #expect(role["upstream_key_generation"] as? Int == 2)
        #expect(try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-small-latest")).status == 200)
        let used = try await fixture.server.requestLog().filter { ($0["path"] as? String) == "/v1/chat/completions" }
        #expect(used.last?["key_id"] as? String == second.id)
    }
}

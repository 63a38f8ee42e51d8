import Foundation
import TestSupport
import Testing

/// The official `mistralai` and `openai` Python SDKs (from PyPI, installed by
/// scripts/setup into /opt/keyrotd-test-venv) against the gateway: clients nobody here wrote.
@Suite(.serialized) struct GatewaySDKTests {
    static let python = "/opt/keyrotd-test-venv/bin/python"
    static let script = repositoryRoot.appendingPathComponent("Tests/GatewaySDK/sdk_check.py").path

    func runChecks(_ fixture: GatewayFixture, client: String, _ arguments: [String]) throws -> ToolRun {
        let tokenFile = try fixture.scratch.write("token-\(client)", (fixture.tokens[client] ?? "") + "\n", mode: 0o600)
        let result = try runTool(
            Self.python, [Self.script] + arguments,
            environment: [
                "PATH": "/usr/bin:/bin", "SDK_CHECK_BASE_URL": fixture.baseURL, "SDK_CHECK_API_KEY_FILE": tokenFile,
            ])
        for token in fixture.tokens.values { #expect(!result.output.contains(token), "a client token reached the output") }
        return result
    }

    @Test func bothSDKsWorkThroughTheGatewayAndSeeOnlyTheirRolesModels() async throws {
        let fixture = try GatewayFixture(
            roles: [
                TestRole(
                    name: "analyst", upstreamKey: "dev-team",
                    models: ["mistral-small-latest", "mistral-embed", "codestral-latest", "mistral-moderation-latest"],
                    extra: "max_tokens = 256"),
            ],
            clients: [("alice", "analyst")])
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        let result = try runChecks(
            fixture, client: "alice",
            [
                "--expect-models", "mistral-small-latest,mistral-embed,codestral-latest,mistral-moderation-latest",
                "--expect-forbidden", "mistral-large-latest", "--role", "analyst",
            ])
        #expect(result.status == 0, "\(result.output)")
        for check in ["chat", "stream", "embeddings", "fim", "models", "forbidden"] {
            #expect(result.output.contains(check), "no \(check) line:\n\(result.output)")
        }
        #expect(!result.output.contains("FAIL"), "\(result.output)")
    }

    @Test func bothSDKsSeeTheBudgetRefusal() async throws {
        // A budget smaller than one request's reservation: every completion is refused 429.
        let fixture = try GatewayFixture(
            roles: [
                TestRole(
                    name: "intern", upstreamKey: "dev-team", models: ["mistral-small-latest"],
                    extra: "max_tokens = 1000\nmonthly_budget = 0.0000001"),
            ],
            clients: [("ivan", "intern")])
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        let result = try runChecks(fixture, client: "ivan", ["--checks", "models", "--expect-budget-exhausted"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("budget"), "\(result.output)")
    }
}

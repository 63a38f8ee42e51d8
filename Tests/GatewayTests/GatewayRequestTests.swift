import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// The gateway between a real HTTP client and the local Mistral-compatible server:
/// every answer a consumer can get, and what reaches the provider.
@Suite(.serialized) struct GatewayRequestTests {
    static func fixture(analystExtra: String = "max_tokens = 64") throws -> GatewayFixture {
        try GatewayFixture(
            roles: [
                TestRole(name: "analyst", upstreamKey: "dev-team", models: ["mistral-small-latest", "mistral-embed"], extra: analystExtra),
                TestRole(name: "senior", upstreamKey: "seniors", models: ["mistral-*", "codestral-latest"]),
            ],
            clients: [("alice", "analyst"), ("bob", "senior")])
    }

    @Test func chatCompletionIsForwardedWithTheRolesKeyAndLoggedWithoutThePrompt() async throws {
        let fixture = try Self.fixture()
        try await fixture.start()
        let key = try await fixture.deliverNewKey("dev-team")
        let prompt = "the secret plan is marmalade"
        let answer = try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-small-latest", prompt))
        #expect(answer.status == 200, "\(answer.text)")
        let usage = try #require(answer.json?["usage"] as? [String: Any])
        #expect((usage["prompt_tokens"] as? Int ?? 0) > 0)
        let log = try await fixture.server.requestLog().filter { ($0["path"] as? String) == "/v1/chat/completions" }
        #expect(log.count == 1)
        #expect(log.first?["key_id"] as? String == key.id)
        #expect(log.first?["key_deleted"] as? Bool == false)
        let lines = fixture.log()
        #expect(lines.contains("alice/analyst"))
        #expect(lines.contains(key.id))
        #expect(!lines.contains("marmalade"), "a prompt reached the log")
        #expect(!lines.contains(key.secret), "an upstream secret reached the log")
        for token in fixture.tokens.values { #expect(!lines.contains(token)) }
    }

    @Test func maxTokensIsInjectedAndCapped() async throws {
        let fixture = try Self.fixture()
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        _ = try await fixture.server.control(.post, "/_control/options", ["completion_tokens": 1000])
        let words = Array(repeating: "word", count: 300).joined(separator: " ")
        let none = try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-small-latest", words))
        let more = try await fixture.request(
            "/v1/chat/completions", client: "alice", json: chat("mistral-small-latest", words, maxTokens: 500))
        let fewer = try await fixture.request(
            "/v1/chat/completions", client: "alice", json: chat("mistral-small-latest", words, maxTokens: 10))
        func completion(_ answer: GatewayFixture.Answer) -> Int? {
            (answer.json?["usage"] as? [String: Any])?["completion_tokens"] as? Int
        }
        #expect(completion(none) == 64)
        #expect(completion(more) == 64)
        #expect(completion(fewer) == 10)
    }

    @Test func streamedChatArrivesChunkByChunkWithUsageLast() async throws {
        let fixture = try Self.fixture()
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        let answer = try await fixture.request(
            "/v1/chat/completions", client: "alice", json: chat("mistral-small-latest", "one two three four", stream: true))
        #expect(answer.status == 200)
        #expect(answer.headers.first(name: "content-type")?.hasPrefix("text/event-stream") == true)
        let events = answer.text.components(separatedBy: "\n\n").filter { $0.hasPrefix("data: ") }
        #expect(events.last == "data: [DONE]")
        #expect(events.count >= 3)
        let last = try #require(events.dropLast().last)
        #expect(last.contains("\"usage\""))
        // The spend was settled from that usage.
        let status = try runTool(gatewayBinary, ["status", "--json", "--socket", fixture.adminSocket], environment: [:])
        #expect(status.status == 0, "\(status.output)")
        #expect(status.output.contains("\"requests\":1"))
    }

    @Test func refusalsComeInMistralsShapeAndReachNoProvider() async throws {
        let fixture = try Self.fixture(analystExtra: "max_tokens = 64\nrequests_per_minute = 2")
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        func expectError(_ answer: GatewayFixture.Answer, _ status: Int, _ code: String, mentioning words: [String] = []) {
            #expect(answer.status == status, "\(answer.text)")
            let json = answer.json
            #expect(json?["object"] as? String == "error")
            #expect(json?["code"] as? String == code, "\(answer.text)")
            let message = json?["message"] as? String ?? ""
            for word in words { #expect(message.contains(word), "\(message)") }
        }
        expectError(try await fixture.request("/v1/chat/completions", client: nil, json: chat("mistral-small-latest")), 401, "unauthorized")
        expectError(
            try await fixture.request("/v1/chat/completions", client: nil, bearer: "krg_nope", json: chat("mistral-small-latest")),
            401, "unauthorized", mentioning: ["unknown token"])
        expectError(
            try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-large-latest")), 403,
            "model_not_allowed", mentioning: ["analyst", "mistral-large-latest", "mistral-small-latest"])
        expectError(
            try await fixture.request("/v1/chat/completions", client: "alice", raw: Array("{\"model\": ".utf8)), 400,
            "invalid_body")
        expectError(
            try await fixture.request("/v1/chat/completions", client: "alice", json: ["messages": []]), 400, "invalid_body",
            mentioning: ["model"])
        expectError(try await fixture.request("/v1/files", method: .GET, client: "alice"), 404, "not_found")
        expectError(
            try await fixture.request(
                "/v1/chat/completions", client: "alice",
                raw: Array("{\"model\":\"mistral-small-latest\",\"x\":\"\(String(repeating: "a", count: 9 << 20))\"}".utf8)),
            413, "body_too_large")
        // Rate limit: 2 per minute; the refusals above were never admitted.
        #expect(try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-small-latest")).status == 200)
        #expect(try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-small-latest")).status == 200)
        let limited = try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-small-latest"))
        expectError(limited, 429, "rate_limited", mentioning: ["requests_per_minute"])
        #expect(Int(limited.headers.first(name: "retry-after") ?? "") ?? 0 >= 1)
        let forwarded = try await fixture.server.requestLog().filter { ($0["path"] as? String)?.hasPrefix("/v1/chat") == true }
        #expect(forwarded.count == 2)
    }

    @Test func modelsAreFilteredPerRole() async throws {
        let fixture = try Self.fixture()
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        try await fixture.deliverNewKey("seniors")
        func ids(_ answer: GatewayFixture.Answer) -> Set<String> {
            Set(((answer.json?["data"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String })
        }
        let analyst = ids(try await fixture.request("/v1/models", method: .GET, client: "alice"))
        #expect(analyst == ["mistral-small-latest", "mistral-embed"])
        let senior = ids(try await fixture.request("/v1/models", method: .GET, client: "bob"))
        #expect(senior.contains("mistral-large-latest") && senior.contains("codestral-latest"))
        #expect(senior.allSatisfy { $0.hasPrefix("mistral-") || $0 == "codestral-latest" })
        #expect(try await fixture.request("/v1/models/mistral-small-latest", method: .GET, client: "alice").status == 200)
        #expect(try await fixture.request("/v1/models/mistral-large-latest", method: .GET, client: "alice").status == 403)
    }

    @Test func upstreamFailuresAre502And504() async throws {
        let fixture = try Self.fixture()
        fixture.upstreamTimeout = "2s"
        try fixture.rewriteConfig()
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        _ = try await fixture.server.control(
            .post, "/_control/faults", ["method": "POST", "path": "/v1/chat/completions", "fault": ["delay": 10, "drop": true]])
        let slow = try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-small-latest"))
        #expect(slow.status == 504, "\(slow.text)")
        #expect(slow.json?["code"] as? String == "upstream_timeout")
        fixture.server.stop()
        let down = try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-small-latest"))
        #expect(down.status == 502, "\(down.text)")
        #expect(down.json?["code"] as? String == "upstream_unreachable")
    }

    @Test func noKeyYetIs503AndSaysWhichKeyIsMissing() async throws {
        let fixture = try Self.fixture()
        try await fixture.start()
        let answer = try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-small-latest"))
        #expect(answer.status == 503)
        #expect((answer.json?["message"] as? String)?.contains("dev-team") == true)
    }

    @Test func aRejectedKeyIsRetriedOnceWithTheKeyNowCurrent() async throws {
        let fixture = try Self.fixture()
        try await fixture.start()
        let first = try await fixture.deliverNewKey("dev-team")
        // The upstream answers 401 once, as if the key had been deleted; a new key arrives meanwhile.
        _ = try await fixture.server.control(
            .post, "/_control/faults",
            ["method": "POST", "path": "/v1/chat/completions", "fault": ["status": 401, "delay": 1]])
        async let answer = fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-small-latest"))
        try await Task.sleep(for: .milliseconds(300))
        let second = try await fixture.deliverNewKey("dev-team", generation: 2)
        let result = try await answer
        #expect(result.status == 200, "\(result.text)")
        let used = try await fixture.server.requestLog().filter { ($0["path"] as? String) == "/v1/chat/completions" }
            .compactMap { $0["key_id"] as? String }
        #expect(used == [first.id, second.id])
        #expect(fixture.log().contains("retried"))
    }
}

/// A consumer that goes away mid-stream: the upstream request is cancelled and the
/// reservation settled with what is known.
@Suite(.serialized) struct GatewayDisconnectTests {
    @Test func aConsumerLeavingMidStreamCancelsTheUpstreamRequest() async throws {
        let fixture = try GatewayFixture(
            roles: [
                TestRole(
                    name: "analyst", upstreamKey: "dev-team", models: ["mistral-small-latest"],
                    extra: "max_tokens = 100\nmonthly_budget = 1.0"),
            ],
            clients: [("alice", "analyst")])
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        // 40 tokens at 5 per second: 8 seconds of stream.
        _ = try await fixture.server.control(.post, "/_control/options", ["completion_tokens": 40, "tokens_per_second": 5])
        let body = try JSONSerialization.data(withJSONObject: chat("mistral-small-latest", "a slow answer please", stream: true))
        let token = fixture.tokens["alice"] ?? ""
        // curl reads for 1.5 s, then gives up and closes the connection.
        // The token goes to curl in a header file, never in its argv.
        let headerFile = try fixture.scratch.write("headers", "Authorization: Bearer \(token)\n", mode: 0o600)
        let bodyFile = try fixture.scratch.write("b.json", String(decoding: body, as: UTF8.self))
        let script = """
            exec /usr/bin/curl -s -N --max-time 1.5 -H @\(headerFile) \
            -H 'Content-Type: application/json' --data-binary @\(bodyFile) \(fixture.baseURL)/v1/chat/completions
            """
        let started = Date()
        let result = try runTool("/bin/sh", ["-c", script], environment: ["PATH": "/usr/bin:/bin"])
        #expect(result.output.contains("data: {"), "no chunk arrived before the consumer left: \(result.output)")
        #expect(!result.output.contains("[DONE]"))
        // The provider saw its client go away long before the stream's 8 seconds.
        #expect(try await waitFor(seconds: 5) {
            try await fixture.server.requestLog().contains { ($0["stream_end"] as? String) == "client_closed" }
        })
        #expect(Date().timeIntervalSince(started) < 7)
        #expect(try await waitFor(seconds: 5) { (try fixture.roleStatus("analyst")["requests"] as? Int) == 1 })
        let role = try fixture.roleStatus("analyst")
        #expect((role["reserved"] as? Double) == 0)
        // No usage arrived: charged what it may have cost, the whole reservation.
        #expect((role["spent"] as? Double ?? 0) > 0)
        #expect(fixture.log().contains("consumer_closed") || fixture.log().contains("stream_interrupted"))
    }
}

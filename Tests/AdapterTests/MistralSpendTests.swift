import Foundation
import KeyRotation
@testable import KeyRotationAdapters
import TestSupport
import Testing

/// The provider's spend figures over real libcurl against the local server.
@Suite(.serialized) struct MistralSpendTests {
    /// Mid-October 2026 (UTC): the month whose usage is read.
    static let now = Date(timeIntervalSince1970: 1_792_065_600)  // 2026-10-15T12:00:00Z
    static let defaultWorkspace = "7f1e0c3a-9b2d-4c6e-8a1f-3d5b7c9e0a21"

    final class Fixture {
        let directory: Scratch
        let server: MistralServer
        let provider: MistralProvider

        init() throws {
            directory = try Scratch()
            server = try MistralServer(in: directory)
            provider = MistralProvider(
                baseURL: server.baseURL, adminKey: server.adminKey, requestsPerMinute: 60000,
                http: HTTPClient(connectTimeout: .seconds(2), totalTimeout: .seconds(5), lowSpeedTime: .seconds(2)))
        }

        deinit {
            server.stop()
            directory.remove()
        }

        func organization(_ spend: [String: Any]) async throws {
            _ = try await server.control(.post, "/_control/usage", spend)
        }

        @discardableResult
        func workspace(_ name: String, limit: [String: Any]?, id: String = UUID().uuidString.lowercased()) async throws -> String {
            _ = try await server.control(.post, "/_control/workspaces", ["uuid": id, "name": name, "spend_limit": limit.map { $0 as Any } ?? NSNull()])
            return id
        }

        func usage(_ entries: [[String: Any]]) async throws {
            _ = try await server.control(.post, "/_control/usage", ["add_entries": entries])
        }

        func requests(_ path: String) async throws -> [[String: Any]] {
            try await server.requestLog().filter { $0["path"] as? String == path }
        }
    }

    @Test func theOrganizationFigure() async throws {
        let f = try Fixture()
        try await f.organization(["usage_limit": 1000, "usage": 850.5, "vibe_usage": 10, "total_usage": NSNull(), "currency": "USD"])
        #expect(try await f.provider.spend(now: Self.now) == [
            SpendFigure(scope: .organization, spent: 860.5, limit: 1000, currency: "USD"),
        ], "spent is usage + vibe_usage when the provider gives no total")
        try await f.organization(["total_usage": 900])
        #expect(try await f.provider.spend(now: Self.now).map(\.spent) == [900])
    }

    @Test func workspaceFiguresSumEveryAmountOfTheMonth() async throws {
        let f = try Fixture()
        try await f.organization(["no_monthly_limit": true])
        let beta = try await f.workspace("Beta", limit: ["value": 50, "currency": "USD"])
        let alpha = try await f.workspace("Alpha", limit: ["value": 20])
        let unlimited = try await f.workspace("Unlimited", limit: ["value": 20, "no_monthly_limit": true])
        try await f.usage([
            ["year": 2026, "month": 10, "workspace_id": beta, "model": "mistral-large-latest",
             "input_tokens": 10, "input_price": 0.5, "output_tokens": 4, "output_price": 0.25],
            ["year": 2026, "month": 10, "workspace_id": beta, "model": "codestral-latest",
             "input_tokens": 2, "input_price": 1.0, "output_tokens": 0],
            ["year": 2026, "month": 9, "workspace_id": beta, "input_tokens": 1000, "input_price": 1.0],
            ["year": 2026, "month": 10, "workspace_id": unlimited, "input_tokens": 1000, "input_price": 1.0],
            ["year": 2026, "month": 10, "workspace_id": alpha, "input_tokens": 3, "input_price": 0.5, "output_tokens": 1, "output_price": 0.5],
        ])
        let figures = try await f.provider.spend(now: Self.now)
        #expect(figures == [
            SpendFigure(scope: .workspace, workspaceID: alpha, workspaceName: "Alpha", spent: 2, limit: 20, currency: "EUR"),
            SpendFigure(scope: .workspace, workspaceID: beta, workspaceName: "Beta", spent: 8, limit: 50, currency: "USD"),
        ], "by name; only this month's usage of each workspace")
        let usage = try await f.requests("/v1/admin/usage").compactMap { $0["query"] as? [String: String] }
        #expect(usage == [alpha, beta].map { ["month": "10", "year": "2026", "workspace_id": $0] })
    }

    @Test func everyPageOfWorkspacesIsRead() async throws {
        let f = try Fixture()
        try await f.organization(["no_monthly_limit": true])
        for index in 0..<120 {
            try await f.workspace(String(format: "w%03d", index), limit: index % 50 == 7 ? ["value": 10] : nil)
        }
        let figures = try await f.provider.spend(now: Self.now)
        #expect(figures.compactMap(\.workspaceName) == ["w007", "w057", "w107"])
        #expect(try await f.requests("/v1/admin/workspaces").count == 2)
    }

    @Test func scopesWithoutAMonthlyLimitHaveNoFigure() async throws {
        let f = try Fixture()
        try await f.organization(["usage_limit": 1000, "no_monthly_limit": true, "usage": 5])
        try await f.workspace("zero", limit: ["value": 0])
        try await f.workspace("none", limit: nil)
        try await f.workspace("flagged", limit: ["value": 30, "no_monthly_limit": true])
        #expect(try await f.provider.spend(now: Self.now).isEmpty)
        try await f.organization(["no_monthly_limit": false, "usage_limit": 0])
        #expect(try await f.provider.spend(now: Self.now).isEmpty)
        try await f.organization(["usage_limit": NSNull()])
        #expect(try await f.provider.spend(now: Self.now).isEmpty)
        #expect(try await f.requests("/v1/admin/usage").isEmpty, "no usage read for a workspace without a limit")
    }

    struct Misbehaviour: Sendable, CustomTestStringConvertible {
        var path: String
        var fault: String
        var code: String
        var kind: StepFailure.Kind
        var testDescription: String { "\(fault) on \(path)" }
    }

    static let misbehaviours: [Misbehaviour] = [
        Misbehaviour(path: "/v1/admin/spend-limit", fault: "malformed", code: "bad_response", kind: .transient),
        Misbehaviour(path: "/v1/admin/spend-limit", fault: "500", code: "http_500", kind: .transient),
        Misbehaviour(path: "/v1/admin/spend-limit", fault: "401", code: "http_401", kind: .needsOperator),
        Misbehaviour(path: "/v1/admin/workspaces", fault: "malformed", code: "bad_response", kind: .transient),
        Misbehaviour(path: "/v1/admin/workspaces", fault: "503", code: "http_503", kind: .transient),
        Misbehaviour(path: "/v1/admin/usage", fault: "malformed", code: "bad_response", kind: .transient),
        Misbehaviour(path: "/v1/admin/usage", fault: "500", code: "http_500", kind: .transient),
    ]

    @Test(arguments: misbehaviours)
    func aMisbehavingBillingAPI(_ m: Misbehaviour) async throws {
        let f = try Fixture()
        try await f.workspace("Limited", limit: ["value": 10])
        let fault: [String: Any] = Int(m.fault).map { ["status": $0] } ?? [m.fault: true]
        _ = try await f.server.control(.post, "/_control/faults", ["method": "GET", "path": m.path, "fault": fault])
        do {
            let figures = try await f.provider.spend(now: Self.now)
            Issue.record("expected \(m.code), got \(figures)")
        } catch {
            #expect(error.code == m.code)
            #expect(error.kind == m.kind)
            #expect(!error.message.isEmpty)
        }
        #expect(try await f.provider.spend(now: Self.now).count == 2, "the next reading succeeds")
    }
}

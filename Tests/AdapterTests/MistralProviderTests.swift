import Foundation
import KeyRotation
@testable import KeyRotationAdapters
import TestSupport
import Testing

/// The Mistral provider over real libcurl against the local server, misbehaving
/// in every way the contract names. Each failure is fed to a real machine to show
/// the phase it lands in, when it is retried, and what is logged.
@Suite(.serialized) struct MistralProviderTests {
    static let workspace = "7f1e0c3a-5d1b-4c52-9a3e-2b7d8e6f4a10"
    static let user = "b52d9e10-3c4f-4e8a-8b1d-6a9f0c2e7d35"

    final class Fixture {
        let directory: Scratch
        let server: MistralServer
        let provider: MistralProvider

        init(timeout: Duration = .seconds(5)) throws {
            directory = try Scratch()
            server = try MistralServer(in: directory)
            provider = MistralProvider(
                baseURL: server.baseURL, adminKey: server.adminKey, requestsPerMinute: 60000,
                http: HTTPClient(connectTimeout: .seconds(2), totalTimeout: timeout, lowSpeedTime: .seconds(2)))
        }

        deinit {
            server.stop()
            directory.remove()
        }

        func fault(_ method: String, _ path: String, _ fault: [String: Any], times: Int = 1) async throws {
            _ = try await server.control(.post, "/_control/faults", ["method": method, "path": path, "fault": fault, "times": times])
        }

        func create(_ name: String = "keyrotd/t/g1/aaaaaa") async throws(StepFailure) -> CreatedKey {
            try await provider.createKey(name: name, expiration: Date() + .days(100), workspace: MistralProviderTests.workspace, user: MistralProviderTests.user)
        }
    }

    // MARK: - The happy paths

    @Test func createListVerifyDelete() async throws {
        let f = try Fixture()
        let created = try await f.create("keyrotd/alpha/g1/abcdef")
        #expect(created.name == "keyrotd/alpha/g1/abcdef")
        #expect(abs(created.createdAt.timeIntervalSinceNow) < 60)
        try await f.provider.verifyKey(secret: created.secret)
        let listed = try await f.provider.listKeys(nameContains: "keyrotd/alpha/")
        #expect(listed.map(\.id) == [created.id])
        let control = try #require(try await f.server.keys().first)
        let expected = MistralProvider.expirationDay(Date() + .days(100))
        #expect(control["expiration_date"] as? String == expected)
        #expect(control["workspace_uuid"] as? String == Self.workspace)
        #expect(control["user_id"] as? String == Self.user)
        try await f.provider.deleteKey(id: created.id)
        try await f.provider.deleteKey(id: created.id)  // 404: already gone counts as deleted
        #expect(try await f.provider.listKeys(nameContains: "keyrotd/alpha/").isEmpty)
        await #expect(throws: StepFailure.self) { try await f.provider.verifyKey(secret: created.secret) }
    }

    @Test func listReadsEveryPage() async throws {
        let f = try Fixture()
        for index in 0..<230 {
            _ = try await f.server.control(.post, "/_control/keys", ["name": "seed-\(index)"])
        }
        let all = try await f.provider.listKeys(nameContains: nil)
        #expect(all.count == 230)
        #expect(Set(all.map(\.id)).count == 230)
        let pages = try await f.server.requestLog().filter { $0["path"] as? String == "/v1/admin/api-keys" && $0["method"] as? String == "GET" }
        #expect(pages.count == 3)
    }

    @Test(arguments: ["micro", "milli", "seconds", "nanos", "offset", "naive"])
    func timestampsInEveryShapeAreRead(format: String) async throws {
        let f = try Fixture()
        _ = try await f.server.control(.post, "/_control/options", ["created_at_format": format])
        let created = try await f.create()
        let listed = try await f.provider.listKeys(nameContains: nil)
        #expect(abs(created.createdAt.timeIntervalSinceNow) < 60, "\(format)")
        #expect(abs(listed[0].createdAt.timeIntervalSince(created.createdAt)) < 0.001, "\(format)")
    }

    // MARK: - Misbehaviour, each through a real machine

    struct Misbehaviour: Sendable, CustomTestStringConvertible {
        var name: String
        var fault: [String: String]
        var code: String
        var phase: Phase
        /// Expected delay before the next attempt: exact, or a range for jittered backoff.
        var retryIn: ClosedRange<Double>
        var testDescription: String { name }
    }

    /// A create that timed out or lost its connection may still land: it is retried
    /// (reconciled) one timeout later (1 s here), not after the usual backoff.
    static let misbehaviours: [Misbehaviour] = [
        Misbehaviour(name: "401", fault: ["status": "401"], code: "http_401", phase: .blocked, retryIn: 3600...3600),
        Misbehaviour(name: "403", fault: ["status": "403"], code: "http_403", phase: .blocked, retryIn: 3600...3600),
        Misbehaviour(name: "422", fault: ["status": "422"], code: "http_422", phase: .blocked, retryIn: 3600...3600),
        Misbehaviour(name: "429 with Retry-After", fault: ["status": "429", "retry_after": "7"], code: "http_429", phase: .creating, retryIn: 7...7),
        Misbehaviour(name: "500", fault: ["status": "500"], code: "http_500", phase: .creating, retryIn: 5...10),
        Misbehaviour(name: "503 with Retry-After", fault: ["status": "503", "retry_after": "9"], code: "http_503", phase: .creating, retryIn: 9...9),
        Misbehaviour(name: "slower than the timeout", fault: ["delay": "3"], code: "timeout", phase: .creating, retryIn: 1...1),
        Misbehaviour(name: "dropped connection", fault: ["drop": "true"], code: "network", phase: .creating, retryIn: 1...1),
        Misbehaviour(name: "dropped after creating", fault: ["drop_after_create": "true"], code: "network", phase: .creating, retryIn: 1...1),
        Misbehaviour(name: "malformed JSON", fault: ["malformed": "true"], code: "bad_response", phase: .creating, retryIn: 5...10),
        Misbehaviour(name: "truncated body", fault: ["truncated": "true"], code: "network", phase: .creating, retryIn: 1...1),
    ]

    @Test(arguments: misbehaviours)
    func aMisbehavingCreate(_ m: Misbehaviour) async throws {
        let f = try Fixture(timeout: .seconds(1))
        var fault: [String: Any] = [:]
        for (key, value) in m.fault { fault[key] = Int(value) ?? (value == "true" ? true : value as Any) }
        try await f.fault("POST", "/v1/admin/api-keys", fault)

        var policy = KeyPolicy.standard
        policy.retryInitial = .seconds(10)
        policy.blockedRetry = .hours(1)
        var machine = RotationMachine(record: KeyRecord(name: "t", seed: 7), policy: policy, hooks: ["/bin/true"], instance: "test", workspace: "test", timeZone: .gmt)
        let now = Date()
        let actions = machine.handle(.tick, now: now)
        guard case .createKey(let name, _)? = actions.last else {
            Issue.record("expected a create, got \(actions)")
            return
        }
        let event: Event
        do {
            event = .created(try await f.create(name))
        } catch {
            event = .failed(error)
        }
        let after = machine.handle(event, now: now)
        #expect(machine.record.phase == m.phase)
        #expect(machine.record.lastError?.code == m.code, "\(String(describing: machine.record.lastError))")
        let retryIn = try #require(machine.record.retryAt).timeIntervalSince(now)
        // Instants are kept on a millisecond grid.
        #expect(retryIn >= m.retryIn.lowerBound - 0.001 && retryIn <= m.retryIn.upperBound + 0.001, "retry in \(retryIn)s")
        let logged = after.compactMap { if case .emit(let e) = $0 { e } else { nil } }
        #expect(logged.map(\.kind) == [m.phase == .blocked ? .blocked : .stepFailed])
        #expect(logged.first?.failure?.code == m.code)

        // The next attempt reconciles first: a key the provider created without
        // answering is found by name and deleted, never left behind.
        let retryActions = machine.handle(.tick, now: try #require(machine.record.retryAt))
        guard case .listKeys(let filter?)? = retryActions.last else {
            Issue.record("expected a reconcile list, got \(retryActions)")
            return
        }
        let found = try await f.provider.listKeys(nameContains: filter).filter { $0.name == name }
        let leftBehind = m.name == "dropped after creating" || m.name == "truncated body" ? 1 : 0
        #expect(found.count == leftBehind)
    }

    @Test func aNewKeyTheProviderDoesNotAcceptYetIsRetriedNotDeployed() async throws {
        let f = try Fixture()
        let created = try await f.create()
        try await f.provider.deleteKey(id: created.id)
        do {
            try await f.provider.verifyKey(secret: created.secret)
            Issue.record("a deleted key verified")
        } catch {
            #expect(error.code == "verify_http_401")
            #expect(error.kind == .transient)
        }
    }

    @Test func deleteFailuresOtherThan404AreReported() async throws {
        let f = try Fixture()
        let created = try await f.create()
        try await f.fault("DELETE", "/v1/admin/api-keys/*", ["status": 500])
        await #expect(throws: StepFailure.self) { try await f.provider.deleteKey(id: created.id) }
        try await f.provider.deleteKey(id: created.id)
    }

    @Test func plainHTTPToARemoteHostIsRefusedWithoutConnecting() async throws {
        let provider = MistralProvider(baseURL: "http://192.0.2.1", adminKey: Secret("x"), requestsPerMinute: 60)
        do {
            _ = try await provider.listKeys(nameContains: nil)
            Issue.record("http to a remote host was allowed")
        } catch {
            #expect(error.code == "refused_url")
            #expect(error.kind == .needsOperator)
        }
    }

    @Test func anUnreachableProviderIsANetworkError() async throws {
        let provider = MistralProvider(
            baseURL: "http://127.0.0.1:1", adminKey: Secret("x"), requestsPerMinute: 60,
            http: HTTPClient(connectTimeout: .seconds(2), totalTimeout: .seconds(3)))
        do {
            _ = try await provider.listKeys(nameContains: nil)
            Issue.record("connected to nothing")
        } catch {
            #expect(error.code == "network")
            #expect(error.kind == .transient)
        }
    }

    @Test func cancellationAbortsATransferPromptly() async throws {
        let f = try Fixture(timeout: .seconds(30))
        try await f.fault("GET", "/v1/admin/api-keys", ["delay": 20])
        let clock = ContinuousClock()
        let started = clock.now
        let task = Task { try await f.provider.listKeys(nameContains: nil) }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        let result = await task.result
        #expect(clock.now - started < .seconds(10), "cancellation took \(clock.now - started)")
        guard case .failure(let error as StepFailure) = result else {
            Issue.record("expected a cancelled failure, got \(result)")
            return
        }
        #expect(error.code == "cancelled")
    }

}

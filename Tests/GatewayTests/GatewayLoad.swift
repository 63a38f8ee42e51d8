import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TestSupport

/// What a stream of consumers saw.
struct LoadOutcome: Sendable {
    var succeeded = 0
    var failed: [String] = []
    var budgetRefused = 0

    mutating func merge(_ other: LoadOutcome) {
        succeeded += other.succeeded
        failed += other.failed
        budgetRefused += other.budgetRefused
    }
}

extension GatewayFixture {
    /// `consumers` tasks, each sending streamed chat requests back to back until `until`
    /// returns true (or, with `stopOnBudget`, until the gateway says the budget is spent).
    /// A request succeeds when it is 200 and its stream ends with usage and [DONE].
    func streamLoad(
        consumers: Int, client: String, model: String = "mistral-small-latest", stopOnBudget: Bool = false,
        until done: @escaping @Sendable () -> Bool
    ) async -> LoadOutcome {
        let token = tokens[client] ?? ""
        let url = baseURL + "/v1/chat/completions"
        let body = try? JSONSerialization.data(withJSONObject: chat(model, "stream me some words please", stream: true))
        return await withTaskGroup(of: LoadOutcome.self) { group in
            for _ in 0..<consumers {
                group.addTask { [http] in
                    var outcome = LoadOutcome()
                    while !done() {
                        var request = HTTPClientRequest(url: url)
                        request.method = .POST
                        request.headers.add(name: "Authorization", value: "Bearer \(token)")
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.body = .bytes(ByteBuffer(bytes: body ?? Data()))
                        do {
                            let response = try await http.execute(request, timeout: .seconds(60))
                            let text = String(buffer: try await response.body.collect(upTo: 16 << 20))
                            if response.status == .ok, text.hasSuffix("data: [DONE]\n\n"), text.contains("\"usage\"") {
                                outcome.succeeded += 1
                            } else if response.status == .tooManyRequests, text.contains("budget_exceeded") {
                                outcome.budgetRefused += 1
                                if stopOnBudget { return outcome }
                                try? await Task.sleep(for: .milliseconds(50))
                            } else {
                                outcome.failed.append("\(response.status.code): \(text.prefix(300))")
                            }
                        } catch {
                            outcome.failed.append("transport: \(error)")
                        }
                    }
                    return outcome
                }
            }
            var total = LoadOutcome()
            for await outcome in group { total.merge(outcome) }
            return total
        }
    }

    /// `keyrotd-gateway status --json`, decoded.
    func status() throws -> [String: Any] {
        let result = try runTool(gatewayBinary, ["status", "--json", "--socket", adminSocket], environment: [:])
        guard result.status == 0, let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        else { throw FixtureError("status failed (\(result.status)): \(result.output)") }
        return json
    }

    func roleStatus(_ name: String) throws -> [String: Any] {
        let roles = try status()["roles"] as? [[String: Any]] ?? []
        guard let role = roles.first(where: { $0["name"] as? String == name }) else { throw FixtureError("no role \(name) in status") }
        return role
    }
}

/// A flag tasks can read while a test flips it.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    var isSet: Bool { lock.withLock { stopped } }
    func set() { lock.withLock { stopped = true } }
}

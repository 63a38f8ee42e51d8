import GatewayCore
import Logging

/// The one journal line each request leaves: who, which role and model, the outcome,
/// tokens, cost, latency and the upstream key id. Never a prompt or an answer.
struct RequestRecord: Sendable {
    let started = ContinuousClock.now
    var method: String
    var path: String
    var client: String?
    var role: String?
    var model: String?
    var stream = false
    var status = 0
    var code: String?
    var usage: Usage?
    var cost: Money?
    var upstreamKey: String?
    var upstreamKeyID: String?
    var retried = false

    func log(_ logger: Logger, currency: String) {
        let elapsed = ContinuousClock.now - started
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        let latency = (milliseconds * 10).rounded() / 10
        var metadata: Logger.Metadata = [
            "event": "request", "method": .string(method), "path": .string(path), "status": .stringConvertible(status),
            "latency_ms": .stringConvertible(latency),
        ]
        if let client { metadata["client"] = .string(client) }
        if let role { metadata["role"] = .string(role) }
        if let model { metadata["model"] = .string(model) }
        if stream { metadata["stream"] = "true" }
        if let code { metadata["code"] = .string(code) }
        if let usage {
            metadata["prompt_tokens"] = .stringConvertible(usage.promptTokens)
            metadata["completion_tokens"] = .stringConvertible(usage.completionTokens)
        }
        if let cost { metadata["cost"] = .string(cost.description) }
        if let upstreamKey { metadata["upstream_key"] = .string(upstreamKey) }
        if let upstreamKeyID { metadata["upstream_key_id"] = .string(upstreamKeyID) }
        if retried { metadata["retried"] = "true" }
        var line = "\(method) \(path) \(status)"
        if let client, let role { line += " \(client)/\(role)" }
        if let model { line += " \(model)" }
        if let usage { line += " \(usage.promptTokens)+\(usage.completionTokens) tokens" }
        if let cost { line += " \(cost) \(currency)" }
        line += " \(latency) ms"
        if let upstreamKeyID { line += " key \(upstreamKeyID)" }
        if let code { line += " (\(code))" }
        logger.info("\(line)", metadata: metadata)
    }
}

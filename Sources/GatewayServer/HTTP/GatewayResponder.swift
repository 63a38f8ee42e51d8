import AsyncHTTPClient
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import KeyRotation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Answers consumers: authenticates, checks the model, applies `max_tokens`, takes the
/// rate limits and a budget reservation, forwards with the role's current upstream key,
/// streams the answer back and settles the reservation with the real usage.
public final class GatewayResponder: Sendable {
    let current: NIOLockedValueBox<LoadedGateway>
    let store: any GatewayStore
    let upstream: Upstream
    let logger: Logger
    let alerts: BudgetAlerts

    public init(loaded: LoadedGateway, store: any GatewayStore, upstream: Upstream, alerts: BudgetAlerts, logger: Logger) {
        self.current = NIOLockedValueBox(loaded)
        self.store = store
        self.upstream = upstream
        self.alerts = alerts
        self.logger = logger
    }

    /// The configuration requests start with from now on (requests in flight keep theirs).
    public var loaded: LoadedGateway { current.withLockedValue { $0 } }

    public func replace(_ loaded: LoadedGateway) {
        current.withLockedValue { $0 = loaded }
    }

    public func respond(to request: Request, context: GatewayContext) async -> Response {
        let loaded = self.loaded
        var record = RequestRecord(method: request.method.rawValue, path: request.uri.path)
        do throws(GatewayErrorResponse) {
            return try await route(request, context, loaded, &record)
        } catch {
            record.status = error.status
            record.code = error.code
            record.log(logger, currency: loaded.configuration.currency)
            return error.response
        }
    }

    private func route(
        _ request: Request, _ context: GatewayContext, _ loaded: LoadedGateway, _ record: inout RequestRecord
    ) async throws(GatewayErrorResponse) -> Response {
        let path = request.uri.path
        guard let route = Route(method: request.method.rawValue, path: path) else {
            if Route.isKnownPath(path) {
                throw GatewayErrorResponse(
                    status: 405, message: "\(request.method.rawValue) is not allowed on \(path)",
                    type: "invalid_request_error", code: "method_not_allowed")
            }
            throw GatewayErrorResponse(
                status: 404, message: "\(path) is not a path this gateway forwards", type: "not_found",
                code: "not_found")
        }
        let caller: Caller
        switch await Authentication.identify(request, context, loaded) {
        case .success(let identified): caller = identified
        case .failure(let error): throw error
        }
        record.client = caller.client.name
        record.role = caller.role.name
        switch route {
        case .inference(let kind):
            return try await forward(kind, request, caller, loaded, &record)
        case .models:
            return try await listModels(caller, loaded, &record)
        case .model(let id):
            record.model = id
            guard caller.role.models.allows(id) else { throw Self.forbidden(caller.role, model: id) }
            return try await passThrough(path: "/v1/models/\(id)", caller, loaded, &record)
        }
    }

    // MARK: Inference

    private struct Reservation {
        var role: Role
        var month: BudgetMonth
        var id: UInt64
        var amount: Money
        var price: ModelPrice?
        var estimatedTokens: Int
    }

    private func forward(
        _ kind: InferenceKind, _ request: Request, _ caller: Caller, _ loaded: LoadedGateway,
        _ record: inout RequestRecord
    ) async throws(GatewayErrorResponse) -> Response {
        let configuration = loaded.configuration
        var body = try await Self.collect(request, limit: configuration.maxBodyBytes)
        let facts: RequestFacts
        do throws(BodyProblem) {
            facts = try GatewayCore.RequestBody.inspect(body)
        } catch {
            throw GatewayErrorResponse(status: 400, message: error.message, type: "invalid_request_error", code: "invalid_body")
        }
        record.model = facts.model
        record.stream = facts.stream
        let role = caller.role
        guard role.models.allows(facts.model) else { throw Self.forbidden(role, model: facts.model) }

        var outputBound = 0
        if kind.generates {
            if let cap = role.maxTokens, (facts.maxTokens ?? .max) > cap {
                body = GatewayCore.RequestBody.settingMaxTokens(body, to: cap)
                outputBound = cap
            } else {
                outputBound = facts.maxTokens ?? 0
            }
        }
        let price = configuration.prices[facts.model]
        if role.monthlyBudget != nil, price == nil {
            throw GatewayErrorResponse(
                status: 403,
                message: "role \(role.name) has a monthly budget and model \(facts.model) has no price in the gateway's configuration ([prices.\"\(facts.model)\"])",
                type: "permission_error", code: "model_not_priced")
        }
        // Every prompt token is at least one byte of the body: bytes bound the prompt.
        let estimatedTokens = body.count + outputBound
        let limits = RateLimiter.Limits(requestsPerMinute: role.requestsPerMinute, tokensPerMinute: role.tokensPerMinute)
        if limits.requestsPerMinute != nil || limits.tokensPerMinute != nil {
            switch await store.admit(role: role.name, tokens: estimatedTokens, limits: limits) {
            case .admitted: break
            case .limited(let retryAfter, let limit):
                throw GatewayErrorResponse(
                    status: 429, message: "role \(role.name) is over its rate limit (\(limit)); retry in \(retryAfter) s",
                    type: "rate_limit_error", code: "rate_limited", retryAfter: retryAfter)
            case .neverFits(let tokens, let tokensPerMinute):
                throw GatewayErrorResponse(
                    status: 429,
                    message: "this request may use up to \(tokens) tokens (body bytes plus max_tokens), more than role \(role.name)'s tokens_per_minute = \(tokensPerMinute); send a smaller request or a lower max_tokens",
                    type: "rate_limit_error", code: "request_exceeds_token_limit", retryAfter: 60)
            }
        }
        let now = Int64(Date().timeIntervalSince1970)
        let month = BudgetMonth(secondsSinceEpoch: now)
        let amount = price?.cost(input: body.count, output: outputBound) ?? .zero
        let outcome: SpendBook.ReserveOutcome
        do {
            outcome = try await store.reserve(role: role.name, month: month, amount: amount, budget: role.monthlyBudget)
        } catch {
            await store.refund(role: role.name, tokens: estimatedTokens, limits: limits)
            logger.error(
                "cannot record spend: \(error)", metadata: ["event": "spend-write-failed", "role": .string(role.name)])
            throw GatewayErrorResponse(
                status: 503, message: "the gateway cannot record spend right now; nothing was forwarded",
                type: "service_unavailable", code: "spend_not_recorded", retryAfter: 5)
        }
        guard case .reserved(let id) = outcome else {
            await store.refund(role: role.name, tokens: estimatedTokens, limits: limits)
            let retryAfter = Int(max(1, month.nextMonthStart - now))
            var message = "role \(role.name) has reached its monthly budget"
            if case .overBudget(let committed, let budget) = outcome {
                message = "role \(role.name) cannot spend up to \(amount) \(configuration.currency) more this month: \(committed) of its \(budget) \(configuration.currency) budget is spent or reserved"
            }
            throw GatewayErrorResponse(
                status: 429, message: message, type: "rate_limit_error", code: "budget_exceeded", retryAfter: retryAfter)
        }
        let reservation = Reservation(
            role: role, month: month, id: id, amount: amount, price: price, estimatedTokens: estimatedTokens)

        let accept = request.headers[.accept]
        let upstreamResponse: HTTPClientResponse
        do {
            upstreamResponse = try await send(
                method: .POST, path: kind.rawValue, body: body, accept: accept, role: role, record: &record)
        } catch let error as GatewayErrorResponse {
            await settle(reservation, usage: nil, fullCharge: false, limits: limits, loaded)
            throw error
        } catch {
            await settle(reservation, usage: nil, fullCharge: Upstream.mayHaveReachedProvider(error), limits: limits, loaded)
            throw Upstream.failure(error)
        }
        record.status = Int(upstreamResponse.status.code)
        var headers = HTTPFields()
        if let contentType = upstreamResponse.headers.first(name: "content-type") {
            headers[.contentType] = contentType
        }
        let status = HTTPResponse.Status(code: Int(upstreamResponse.status.code))

        let isEventStream = upstreamResponse.headers.first(name: "content-type")?.hasPrefix("text/event-stream") ?? false
        guard upstreamResponse.status == .ok, isEventStream else {
            // One JSON body: read it whole (its usage settles the reservation), then answer.
            let answer: ByteBuffer
            do {
                answer = try await upstreamResponse.body.collect(upTo: 256 << 20)
            } catch {
                await settle(reservation, usage: nil, fullCharge: true, limits: limits, loaded)
                throw Upstream.failure(error)
            }
            let usage = upstreamResponse.status == .ok ? Usage.inResponse(Array(answer.readableBytesView)) : nil
            // A refused request costs nothing at the provider; an answer without usage is charged in full.
            let cost = await settle(
                reservation, usage: usage, fullCharge: upstreamResponse.status == .ok && usage == nil, limits: limits,
                loaded)
            record.usage = usage
            record.cost = cost
            record.log(logger, currency: configuration.currency)
            return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: answer))
        }

        // A stream: bytes go to the consumer as they come; the last usage settles it.
        let finalRecord = record
        let responder = self
        return Response(
            status: status, headers: headers,
            body: ResponseBody { writer in
                var record = finalRecord
                var scanner = StreamUsageScanner()
                var failure: (any Error)?
                do {
                    for try await chunk in upstreamResponse.body {
                        scanner.consume(chunk.readableBytesView)
                        try await writer.write(chunk)
                    }
                    try await writer.finish(nil)
                } catch {
                    // The consumer went away (or the upstream broke off): leaving the loop drops
                    // the upstream body, which cancels the upstream request.
                    failure = error
                }
                let usage = scanner.usage
                record.usage = usage
                record.cost = await responder.settle(
                    reservation, usage: usage, fullCharge: usage == nil, limits: limits, loaded)
                if failure != nil { record.code = scanner.finished ? "consumer_closed" : "stream_interrupted" }
                record.log(responder.logger, currency: loaded.configuration.currency)
                if let failure { throw failure }
            })
    }

    /// Settles a reservation: with the usage's cost when known, else in full (`fullCharge`:
    /// the provider may have done the work) or not at all. Returns the cost charged.
    @discardableResult
    private func settle(
        _ reservation: Reservation, usage: Usage?, fullCharge: Bool, limits: RateLimiter.Limits, _ loaded: LoadedGateway
    ) async -> Money {
        let role = reservation.role
        let cost: Money
        if let usage {
            cost = min(
                reservation.price?.cost(input: usage.promptTokens, output: usage.completionTokens) ?? .zero,
                reservation.amount)
        } else {
            cost = fullCharge ? reservation.amount : .zero
        }
        let used = usage.map { $0.promptTokens + $0.completionTokens } ?? (fullCharge ? reservation.estimatedTokens : 0)
        if limits.tokensPerMinute != nil, used < reservation.estimatedTokens {
            await store.refund(role: role.name, tokens: reservation.estimatedTokens - used, limits: limits)
        }
        let crossed = await store.settle(
            role: role.name, month: reservation.month, id: reservation.id, cost: cost, usage: usage,
            budget: role.monthlyBudget, alertAt: role.alertAt)
        if !crossed.isEmpty, let budget = role.monthlyBudget {
            let entry = await store.spend(role: role.name, month: reservation.month)
            for threshold in crossed {
                alerts.raise(
                    role: role.name, month: reservation.month, threshold: threshold, spent: entry.settled, budget: budget,
                    loaded: loaded)
            }
        }
        return cost
    }

    // MARK: Upstream with the current key

    /// Sends with the role's current key; a 401 from a key that was replaced meanwhile is
    /// retried once with the key now current (a rotation raced the request).
    private func send(
        method: HTTPMethod, path: String, body: [UInt8]?, accept: String?, role: Role, record: inout RequestRecord
    ) async throws -> HTTPClientResponse {
        guard let key = await store.key(named: role.upstreamKey) else {
            throw GatewayErrorResponse(
                status: 503,
                message: "no upstream key has been delivered for role \(role.name) (keyrotd key \(role.upstreamKey)) yet",
                type: "service_unavailable", code: "no_upstream_key", retryAfter: 10)
        }
        record.upstreamKey = role.upstreamKey
        record.upstreamKeyID = key.keyID
        let response = try await upstream.send(method: method, path: path, body: body, accept: accept, key: key)
        guard response.status == .unauthorized, let now = await store.key(named: role.upstreamKey), now != key else {
            return response
        }
        _ = try? await response.body.collect(upTo: 1 << 20)
        record.retried = true
        record.upstreamKeyID = now.keyID
        return try await upstream.send(method: method, path: path, body: body, accept: accept, key: now)
    }

    // MARK: Models

    private func listModels(_ caller: Caller, _ loaded: LoadedGateway, _ record: inout RequestRecord)
        async throws(GatewayErrorResponse) -> Response
    {
        let (status, answer) = try await fetch(path: "/v1/models", caller, &record)
        guard status == .ok else {
            record.log(logger, currency: loaded.configuration.currency)
            return Response(status: .init(code: Int(status.code)), headers: [.contentType: "application/json"], body: .init(byteBuffer: answer))
        }
        guard var list = (try? JSONSerialization.jsonObject(with: Data(answer.readableBytesView))) as? [String: Any],
            let models = list["data"] as? [[String: Any]],
            let filtered = Optional(models.filter { ($0["id"] as? String).map(caller.role.models.allows) ?? false }),
            let encoded = try? JSONSerialization.data(withJSONObject: { list["data"] = filtered; return list }())
        else {
            throw GatewayErrorResponse(
                status: 502, message: "the upstream's model list is not the expected JSON", type: "upstream_error",
                code: "upstream_malformed")
        }
        record.log(logger, currency: loaded.configuration.currency)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: encoded)))
    }

    private func passThrough(path: String, _ caller: Caller, _ loaded: LoadedGateway, _ record: inout RequestRecord)
        async throws(GatewayErrorResponse) -> Response
    {
        let (status, answer) = try await fetch(path: path, caller, &record)
        record.log(logger, currency: loaded.configuration.currency)
        return Response(status: .init(code: Int(status.code)), headers: [.contentType: "application/json"], body: .init(byteBuffer: answer))
    }

    private func fetch(path: String, _ caller: Caller, _ record: inout RequestRecord)
        async throws(GatewayErrorResponse) -> (HTTPResponseStatus, ByteBuffer)
    {
        do {
            let response = try await send(
                method: .GET, path: path, body: nil, accept: "application/json", role: caller.role, record: &record)
            record.status = Int(response.status.code)
            return (response.status, try await response.body.collect(upTo: 64 << 20))
        } catch let error as GatewayErrorResponse {
            throw error
        } catch {
            throw Upstream.failure(error)
        }
    }

    // MARK: Helpers

    static func forbidden(_ role: Role, model: String) -> GatewayErrorResponse {
        GatewayErrorResponse(
            status: 403,
            message: "role \(role.name) may not use model \(model); it may use: \(role.models.description)",
            type: "permission_error", code: "model_not_allowed")
    }

    static func collect(_ request: Request, limit: Int) async throws(GatewayErrorResponse) -> [UInt8] {
        let tooLarge = GatewayErrorResponse(
            status: 413, message: "the request body is larger than the gateway's limit of \(limit) bytes",
            type: "invalid_request_error", code: "body_too_large")
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw tooLarge }
        do {
            var request = request
            return Array(try await request.collectBody(upTo: limit).readableBytesView)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge
        } catch {
            throw GatewayErrorResponse(
                status: 400, message: "the request body could not be read", type: "invalid_request_error",
                code: "invalid_body")
        }
    }
}

extension GatewayErrorResponse {
    /// As a Hummingbird response, with `Retry-After` for 429 and 503.
    var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(
            status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

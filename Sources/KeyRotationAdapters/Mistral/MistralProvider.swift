import Foundation
import KeyRotation
import Synchronization

/// The Mistral admin API (`/v1/admin/api-keys`) and `/v1/models` for verification,
/// over libcurl. Unknown response fields are ignored; timestamps are accepted with
/// or without fractions and zone.
///
/// Error policy: 401, 403, 422 and other 4xx need an operator (never hammered);
/// 429 carries `Retry-After`; 408, 5xx and network errors are transient and backed
/// off by the machine. A TLS failure needs an operator: verification is never
/// relaxed, so it means a wrong URL, a broken trust store, or an interception.
public struct MistralProvider: KeyProvider {
    public let baseURL: String
    private let adminKey: Secret
    private let http: HTTPClient
    private let pacer: Pacer
    static let pageSize = 100

    public init(baseURL: String, adminKey: Secret, requestsPerMinute: Int, http: HTTPClient = HTTPClient()) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.adminKey = adminKey
        self.http = http
        // 2 % under the limit: calls land a few ms late and unevenly, and a
        // provider counting a sliding minute would otherwise see N + 1 at its edge.
        pacer = Pacer(interval: .microseconds(61_200_000 / max(1, requestsPerMinute)))
    }

    public func createKey(name: String, expiration: Date, workspace: String, user: String) async throws(StepFailure) -> CreatedKey {
        let request = CreateRequest(
            name: name, expiration: Self.expirationDay(expiration), workspace_uuid: workspace, user_id: user)
        let body = (try? JSONEncoder().encode(request)).map(Array.init) ?? []
        let response: HTTPResponse
        do {
            response = try await call(.post, "/v1/admin/api-keys", body: body)
        } catch where error.code == "timeout" || error.code == "network" {
            // The create may still land at the provider after we gave up on it: the
            // next attempt reconciles by name, so it waits one timeout first and
            // finds such a late key instead of creating beside it.
            var failure = error
            failure.retryAfter = TimeSpan(milliseconds: Int64(HTTPClient.milliseconds(http.totalTimeout)))
            throw failure
        }
        guard let created = try? JSONDecoder().decode(CreatedKeyJSON.self, from: Data(response.body)),
              !created.key.isEmpty, !created.key_id.isEmpty,
              let createdAt = Timestamp.parse(created.created_at)
        else {
            throw StepFailure(kind: .transient, code: "bad_response", message: "create answered 200 with a body that is not an API key")
        }
        return CreatedKey(id: created.key_id, name: created.name ?? name, secret: Secret(created.key), createdAt: createdAt)
    }

    public func listKeys(nameContains: String?) async throws(StepFailure) -> [ListedKey] {
        var keys: [ListedKey] = []
        var seen: Set<String> = []
        var offset = 0
        for _ in 0..<Self.maxPages {
            var query = "limit=\(Self.pageSize)&offset=\(offset)"
            if let nameContains {
                query += "&name=" + (nameContains.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            }
            let response = try await call(.get, "/v1/admin/api-keys?" + query)
            guard let page = try? JSONDecoder().decode(KeyPageJSON.self, from: Data(response.body)) else {
                throw StepFailure(kind: .transient, code: "bad_response", message: "list answered 200 with a body that is not a key list")
            }
            let fresh = page.keys.filter { !seen.contains($0.key_id) }
            for key in fresh {
                seen.insert(key.key_id)
                guard let createdAt = Timestamp.parse(key.created_at) else {
                    throw StepFailure(kind: .transient, code: "bad_response", message: "key \(key.key_id) has an unreadable created_at \"\(key.created_at)\"")
                }
                keys.append(ListedKey(
                    id: key.key_id, name: key.name ?? "", createdAt: createdAt, workspaceID: key.workspace_id,
                    workspaceName: key.workspace_name, lastUsed: key.last_used.flatMap(Self.parseInstant),
                    expiresOn: key.expiration_date.flatMap(Self.parseDay)))
            }
            // A short page ends the list; so does a page with nothing new (a server
            // that ignores `offset` must not keep keyrotd paging forever).
            if page.keys.count < Self.pageSize || fresh.isEmpty { return keys }
            offset += page.keys.count
        }
        throw StepFailure(kind: .transient, code: "bad_response", message: "the key list did not end after \(Self.maxPages) pages")
    }

    static let maxPages = 10_000

    public func deleteKey(id: String) async throws(StepFailure) {
        let escaped = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? id
        do {
            _ = try await call(.delete, "/v1/admin/api-keys/" + escaped)
        } catch where error.code == "http_404" {
            return
        }
    }

    public func verifyKey(secret: Secret) async throws(StepFailure) {
        do {
            _ = try await call(.get, "/v1/models", bearer: secret)
        } catch where error.code == "http_401" || error.code == "http_403" {
            throw StepFailure(
                kind: .transient, code: "verify_\(error.code)",
                message: "the provider does not accept the new key yet (\(error.code)); it may still be propagating")
        }
    }

    // MARK: - Transport

    func call(_ method: HTTPRequest.Method, _ path: String, body: [UInt8]? = nil, bearer: Secret? = nil)
        async throws(StepFailure) -> HTTPResponse
    {
        // requests_per_minute is the admin API's budget: a verification, made with the
        // new key itself, does not spend it.
        if bearer == nil { await pacer.wait() }
        let response: HTTPResponse
        do {
            response = try await http.perform(HTTPRequest(method: method, url: baseURL + path, bearer: bearer ?? adminKey, body: body))
        } catch {
            throw Self.failure(error)
        }
        if (200..<300).contains(response.status) { return response }
        throw Self.failure(status: response.status, body: response.body, retryAfter: response.retryAfter, what: "\(method.rawValue) \(path.split(separator: "?")[0])")
    }

    static func failure(_ error: HTTPError) -> StepFailure {
        switch error.code {
        case .network: StepFailure(kind: .transient, code: "network", message: error.message)
        case .timeout: StepFailure(kind: .transient, code: "timeout", message: error.message)
        case .tooLarge: StepFailure(kind: .transient, code: "bad_response", message: "response too large")
        case .cancelled: StepFailure(kind: .transient, code: "cancelled", message: "cancelled at shutdown")
        case .tls: StepFailure(kind: .needsOperator, code: "tls", message: error.message)
        case .refusedURL: StepFailure(kind: .needsOperator, code: "refused_url", message: error.message)
        case .proxy: StepFailure(kind: .needsOperator, code: "proxy", message: error.message)
        case .setup: StepFailure(kind: .needsOperator, code: "curl_setup", message: error.message)
        }
    }

    static func failure(status: Int, body: [UInt8], retryAfter: TimeSpan?, what: String) -> StepFailure {
        let code = "http_\(status)"
        let detail = errorDetail(body)
        switch status {
        case 401:
            return StepFailure(kind: .needsOperator, code: code, message: "\(what): the admin key was rejected (revoked or invalid)\(detail)")
        case 403:
            return StepFailure(kind: .needsOperator, code: code, message: "\(what): not allowed for this admin key or scope\(detail)")
        case 422:
            return StepFailure(kind: .needsOperator, code: code, message: "\(what): the provider refused the request\(detail)")
        case 429:
            return StepFailure(kind: .rateLimited, code: code, message: "\(what): rate limited\(detail)", retryAfter: retryAfter)
        case 408, 500...599:
            return StepFailure(kind: .transient, code: code, message: "\(what): server error\(detail)", retryAfter: retryAfter)
        default:
            return StepFailure(kind: .needsOperator, code: code, message: "\(what): unexpected HTTP \(status)\(detail)")
        }
    }

    /// ": <detail>" from a FastAPI-style error body, short and single-line; "" if none.
    static func errorDetail(_ body: [UInt8]) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return "" }
        var text: String?
        if let detail = object["detail"] as? String {
            text = detail
        } else if let items = object["detail"] as? [[String: Any]] {
            text = items.compactMap { item -> String? in
                guard let message = item["msg"] as? String else { return nil }
                let location = (item["loc"] as? [Any])?.map { "\($0)" }.joined(separator: ".")
                return location.map { "\($0): \(message)" } ?? message
            }.joined(separator: "; ")
        } else if let message = object["message"] as? String {
            text = message
        }
        guard let text, !text.isEmpty else { return "" }
        let line = text.replacingOccurrences(of: "\n", with: " ")
        return ": " + (line.count > 300 ? line.prefix(300) + "…" : line)
    }

    /// The API takes a date; round up so the key lives at least until `date`.
    static func expirationDay(_ date: Date) -> String {
        let day = (date.timeIntervalSince1970 / 86400).rounded(.up)
        let midnight = Date(timeIntervalSince1970: day * 86400)
        return String(Timestamp.format(midnight).prefix(10))
    }

    /// `last_used` comes as a date (`2026-11-27`) or an instant.
    static func parseInstant(_ text: String) -> Date? {
        Timestamp.parse(text) ?? parseDay(text)
    }

    static func parseDay(_ text: String) -> Date? {
        Timestamp.parse(text.count == 10 ? text + "T00:00:00Z" : text)
    }
}

/// Spaces admin calls at least `interval` apart, so keyrotd stays under the
/// configured requests per minute whatever the number of keys.
final class Pacer: Sendable {
    private let interval: Duration
    private let next = Mutex<ContinuousClock.Instant?>(nil)

    init(interval: Duration) {
        self.interval = interval
    }

    func wait() async {
        let clock = ContinuousClock()
        let slot = next.withLock { next -> ContinuousClock.Instant in
            let slot = max(clock.now, next ?? clock.now)
            next = slot + interval
            return slot
        }
        if slot > clock.now { try? await clock.sleep(until: slot) }
    }
}

// MARK: - Wire types (only the fields keyrotd reads; the rest is ignored)

private struct CreateRequest: Encodable {
    var name: String
    var expiration: String
    var workspace_uuid: String
    var user_id: String
}

private struct CreatedKeyJSON: Decodable {
    var key_id: String
    var key: String
    var name: String?
    var created_at: String
}

private struct KeyPageJSON: Decodable {
    var keys: [KeyJSON]
}

private struct KeyJSON: Decodable {
    var key_id: String
    var name: String?
    var created_at: String
    var workspace_id: String?
    var workspace_name: String?
    var last_used: String?
    var expiration_date: String?
}

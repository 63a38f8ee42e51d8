import CCurl
import Foundation
import KeyRotation
import Synchronization

/// One HTTP exchange. The bearer token is a `Secret` so it cannot be printed by accident.
public struct HTTPRequest: Sendable {
    /// PATCH only drives the local test server's control API.
    public enum Method: String, Sendable { case get = "GET", post = "POST", patch = "PATCH", delete = "DELETE" }

    public var method: Method
    public var url: String
    public var bearer: Secret?
    /// JSON body for POST.
    public var body: [UInt8]?

    public init(method: Method, url: String, bearer: Secret?, body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.bearer = bearer
        self.body = body
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var body: [UInt8]
    /// From `Retry-After` (seconds or an HTTP date), as libcurl reads it.
    public var retryAfter: TimeSpan?
}

/// A transfer that produced no HTTP response.
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Could not resolve, connect, send or receive; the peer closed early.
        case network
        /// Connect timeout, total timeout, or the low-speed limit.
        case timeout
        /// Certificate or TLS handshake failure (verification is always on).
        case tls
        /// The response body exceeded the limit.
        case tooLarge
        /// The URL is not https, or plain http to a non-loopback host.
        case refusedURL
        /// The task was cancelled (shutdown).
        case cancelled
    }

    public var code: Code
    public var message: String
    public var description: String { "\(code.rawValue): \(message)" }
}

/// HTTP over libcurl, one easy handle per request, each run on its own thread so
/// `curl_easy_perform` never blocks the cooperative pool (and with it the loop and
/// the watchdog). Cancellation aborts the transfer through the progress callback.
///
/// Fixed policy: https only (plain http only to loopback addresses), certificate
/// and host verification on, no redirects, no proxies from the environment, no
/// signals (`CURLOPT_NOSIGNAL`), connect and total timeouts plus a low-speed limit,
/// and never verbose output (it would print the Authorization header).
public struct HTTPClient: Sendable {
    public var connectTimeout: Duration
    public var totalTimeout: Duration
    /// A transfer slower than 1 byte/s for this long is aborted.
    public var lowSpeedTime: Duration
    public var maxResponseBytes: Int

    public init(
        connectTimeout: Duration = .seconds(10), totalTimeout: Duration = .seconds(30),
        lowSpeedTime: Duration = .seconds(20), maxResponseBytes: Int = 4 << 20
    ) {
        self.connectTimeout = connectTimeout
        self.totalTimeout = totalTimeout
        self.lowSpeedTime = lowSpeedTime
        self.maxResponseBytes = maxResponseBytes
        _ = Self.globalInit
    }

    /// Once, before any transfer. libcurl would write every TLS session key to
    /// `$SSLKEYLOGFILE` (a capture of the traffic would then reveal the admin key),
    /// so that variable goes first.
    private static let globalInit: Void = {
        unsetenv("SSLKEYLOGFILE")
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    public func perform(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        guard let protocols = Self.allowedProtocol(request.url) else {
            throw HTTPError(code: .refusedURL, message: "refusing \(request.url): https only (plain http only to loopback)")
        }
        let transfer = Transfer(limit: maxResponseBytes)
        let result: Result<HTTPResponse, HTTPError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let thread = Thread { [self] in
                    continuation.resume(returning: self.run(request, protocols: protocols, transfer: transfer))
                }
                thread.name = "keyrotd-http"
                thread.start()
            }
        } onCancel: {
            transfer.cancelled.store(true, ordering: .relaxed)
        }
        return try result.get()
    }

    /// The only protocol libcurl may use for `url`, or nil when the URL is refused.
    static func allowedProtocol(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let host = components.host?.lowercased() else { return nil }
        switch components.scheme?.lowercased() {
        case "https": return "https"
        case "http": return LoopbackAddress.contains(host) ? "http" : nil
        default: return nil
        }
    }

    private func run(_ request: HTTPRequest, protocols: String, transfer: Transfer) -> Result<HTTPResponse, HTTPError> {
        guard let handle = curl_easy_init() else {
            return .failure(HTTPError(code: .network, message: "curl_easy_init failed"))
        }
        defer { curl_easy_cleanup(handle) }

        var headers: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headers) }
        headers = curl_slist_append(headers, "Accept: application/json")
        headers = curl_slist_append(headers, "User-Agent: keyrotd")
        if request.body != nil { headers = curl_slist_append(headers, "Content-Type: application/json") }
        if let bearer = request.bearer {
            bearer.withExposedText { headers = curl_slist_append(headers, "Authorization: Bearer \($0)") }
        }

        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
            keyrotd_curl_setopt_str(handle, CURLOPT_URL, request.url)
            keyrotd_curl_setopt_str(handle, CURLOPT_PROTOCOLS_STR, protocols)
            keyrotd_curl_setopt_str(handle, CURLOPT_REDIR_PROTOCOLS_STR, protocols)
            keyrotd_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
            keyrotd_curl_setopt_str(handle, CURLOPT_PROXY, "")
            keyrotd_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            keyrotd_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
            keyrotd_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
            keyrotd_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(connectTimeout))
            keyrotd_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Self.milliseconds(totalTimeout))
            keyrotd_curl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1)
            keyrotd_curl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, max(1, Self.milliseconds(lowSpeedTime) / 1000))
            keyrotd_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headers)
            keyrotd_curl_setopt_ptr(handle, CURLOPT_ERRORBUFFER, errorPointer.baseAddress)
            keyrotd_curl_setopt_write_callback(handle, CURLOPT_WRITEFUNCTION, writeCallback)
            keyrotd_curl_setopt_ptr(handle, CURLOPT_WRITEDATA, context)
            keyrotd_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
            keyrotd_curl_setopt_xferinfo_callback(handle, progressCallback)
            keyrotd_curl_setopt_ptr(handle, CURLOPT_XFERINFODATA, context)
            switch request.method {
            case .get:
                keyrotd_curl_setopt_long(handle, CURLOPT_HTTPGET, 1)
            case .post, .patch:
                keyrotd_curl_setopt_long(handle, CURLOPT_POST, 1)
                if request.method == .patch { keyrotd_curl_setopt_str(handle, CURLOPT_CUSTOMREQUEST, "PATCH") }
                let body = request.body.flatMap { $0.isEmpty ? nil : $0 } ?? Array("{}".utf8)
                keyrotd_curl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, body.count)
                return body.withUnsafeBytes { bytes in
                    guard let base = bytes.baseAddress else { return CURLE_FAILED_INIT }
                    keyrotd_curl_setopt_ptr(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: base))
                    return curl_easy_perform(handle)
                }
            case .delete:
                keyrotd_curl_setopt_str(handle, CURLOPT_CUSTOMREQUEST, "DELETE")
            }
            return curl_easy_perform(handle)
        }

        guard code == CURLE_OK else {
            let buffered = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let detail = buffered.isEmpty ? String(validatingCString: curl_easy_strerror(code)) ?? "curl error \(code.rawValue)" : buffered
            return .failure(HTTPError(code: Self.classify(code, transfer: transfer), message: detail))
        }
        var status = 0
        keyrotd_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var retryAfter: curl_off_t = 0
        keyrotd_curl_getinfo_off(handle, CURLINFO_RETRY_AFTER, &retryAfter)
        return .success(HTTPResponse(
            status: status, body: transfer.body.withLock { $0 },
            retryAfter: retryAfter > 0 ? .seconds(Int64(retryAfter)) : nil))
    }

    private static func classify(_ code: CURLcode, transfer: Transfer) -> HTTPError.Code {
        switch code {
        case CURLE_ABORTED_BY_CALLBACK: return .cancelled
        case CURLE_WRITE_ERROR where transfer.overflowed.load(ordering: .relaxed): return .tooLarge
        case CURLE_OPERATION_TIMEDOUT: return .timeout
        // Certificate trouble needs an operator; a handshake cut short is the network.
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR:
            return .tls
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT: return .refusedURL
        default: return .network
        }
    }

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}

/// State shared between a transfer's thread and its callbacks (and the cancelling task).
private final class Transfer: Sendable {
    let limit: Int
    let body = Mutex<[UInt8]>([])
    let cancelled = Atomic<Bool>(false)
    let overflowed = Atomic<Bool>(false)

    init(limit: Int) {
        self.limit = limit
    }
}

private func writeCallback(data: UnsafeMutablePointer<CChar>?, size: Int, count: Int, context: UnsafeMutableRawPointer?) -> Int {
    guard let context, let data else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    let accepted = transfer.body.withLock { body -> Bool in
        guard body.count + length <= transfer.limit else { return false }
        data.withMemoryRebound(to: UInt8.self, capacity: length) { body.append(contentsOf: UnsafeBufferPointer(start: $0, count: length)) }
        return true
    }
    if !accepted { transfer.overflowed.store(true, ordering: .relaxed) }
    return accepted ? length : 0
}

private func progressCallback(
    context: UnsafeMutableRawPointer?, _: curl_off_t, _: curl_off_t, _: curl_off_t, _: curl_off_t
) -> Int32 {
    guard let context else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    return transfer.cancelled.load(ordering: .relaxed) ? 1 : 0
}

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
        /// The URL is not https, or plain http to a non-loopback host (checked on the
        /// URL and again on the address libcurl connects to), or plain http through a proxy.
        case refusedURL
        /// The proxy refused the tunnel (407, or 401 from tinyproxy: its credentials; 403: its policy).
        case proxy
        /// libcurl refused an option keyrotd relies on (too old, or built without it).
        case setup
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
/// Fixed policy: https only, TLS 1.2 or later, certificate and host verification
/// on (also for an https proxy), no redirects, no signals (`CURLOPT_NOSIGNAL`),
/// connect and total timeouts plus a low-speed limit, and never verbose output (it
/// would print the Authorization header). Plain http only to loopback: the URL's
/// host must be a loopback address (`LoopbackAddress`) and every socket libcurl
/// opens for it must go to a loopback peer (`keyrotd_guarded_opensocket`), so a
/// host name that resolves elsewhere is refused before any connection.
///
/// Proxies: only `egress.proxy`, never `http_proxy`, `HTTPS_PROXY`, `ALL_PROXY` or
/// `NO_PROXY` from the environment. Every request through it is tunnelled with
/// CONNECT, so the proxy never sees the Authorization header in clear; a plain-http
/// URL is never sent through a proxy. Proxy credentials over an `http://` proxy go
/// only to a loopback peer (the same socket guard). Every option set is checked: a
/// refused one fails the request before it starts, and `selfCheck()` finds that at
/// start-up.
public struct HTTPClient: Sendable {
    public var connectTimeout: Duration
    public var totalTimeout: Duration
    /// A transfer slower than 1 byte/s for this long is aborted.
    public var lowSpeedTime: Duration
    public var maxResponseBytes: Int
    public var egress: HTTPEgress
    /// Test seam: `CURLOPT_RESOLVE` entries (`host:port:address`), so a test can make
    /// an accepted host name resolve to an address that is not loopback.
    var resolve: [String] = []
    /// Test seam: replaces the allowed-protocol list, so a test can make libcurl refuse an option.
    var protocolsOverride: String?

    public init(
        connectTimeout: Duration = .seconds(10), totalTimeout: Duration = .seconds(30),
        lowSpeedTime: Duration = .seconds(20), maxResponseBytes: Int = 4 << 20, egress: HTTPEgress = HTTPEgress()
    ) {
        self.connectTimeout = connectTimeout
        self.totalTimeout = totalTimeout
        self.lowSpeedTime = lowSpeedTime
        self.maxResponseBytes = maxResponseBytes
        self.egress = egress
        _ = Self.globalInit
    }

    /// Once, before any transfer. libcurl would write every TLS session key to
    /// `$SSLKEYLOGFILE` (a capture of the traffic would then reveal the admin key),
    /// so that variable goes first.
    private static let globalInit: CURLcode = {
        unsetenv("SSLKEYLOGFILE")
        return curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    public func perform(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        guard let protocols = Self.allowedProtocol(request.url, proxied: egress.proxy != nil) else {
            let reason = egress.proxy != nil && request.url.lowercased().hasPrefix("http:")
                ? "plain http never goes through a proxy" : "https only (plain http only to loopback)"
            throw HTTPError(code: .refusedURL, message: "refusing \(request.url): \(reason)")
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

    /// Sets every option a request would set, on a handle that never performs: a
    /// libcurl that refuses one (too old, or built without TLS or proxy support) is
    /// found at start-up (`keyrotd run`, `check-config`), not at the first rotation.
    public func selfCheck() throws(HTTPError) {
        guard Self.globalInit == CURLE_OK else {
            throw HTTPError(code: .setup, message: "curl_global_init failed: \(String(cString: curl_easy_strerror(Self.globalInit)))")
        }
        guard let handle = curl_easy_init() else { throw HTTPError(code: .setup, message: "curl_easy_init failed") }
        defer { curl_easy_cleanup(handle) }
        var guardState = keyrotd_socket_guard(loopback_only: 1, refused: 0)
        var options = CurlOptions(handle)
        withUnsafeMutablePointer(to: &guardState) { guardPointer in
            configure(&options, HTTPRequest(method: .post, url: "https://localhost/", bearer: nil, body: [0x7b, 0x7d]),
                      protocols: protocolsOverride ?? "https", socketGuard: guardPointer, headers: nil, resolve: nil,
                      errorBuffer: nil, transfer: nil)
        }
        if let failure = options.failure { throw failure }
        if egress.caFile != nil, egress.caMode == .add, egress.systemCAPath == nil {
            var path: UnsafePointer<CChar>?
            let code = keyrotd_curl_getinfo_str(handle, CURLINFO_CAPATH, &path)
            guard code == CURLE_OK, let path, !String(cString: path).isEmpty else {
                throw HTTPError(code: .setup, message: "ca_mode = \"add\" keeps the system's CA directory beside ca_file, but this libcurl has none built in; use ca_mode = \"replace\" with a bundle that includes the system CAs")
            }
        }
    }

    /// The only protocol libcurl may use for `url`, or nil when the URL is refused.
    static func allowedProtocol(_ url: String, proxied: Bool = false) -> String? {
        guard let components = URLComponents(string: url), let host = components.host?.lowercased() else { return nil }
        switch components.scheme?.lowercased() {
        case "https": return "https"
        case "http": return LoopbackAddress.contains(host) && !proxied ? "http" : nil
        default: return nil
        }
    }

    /// Plain http carrying a secret (the request itself, or proxy credentials to an
    /// http:// proxy) may only go to a loopback peer.
    func loopbackOnly(protocols: String) -> Bool {
        protocols == "http" || (egress.proxyScheme == "http" && egress.proxyCredentials != nil)
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
        var resolveList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(resolveList) }
        for entry in resolve { resolveList = curl_slist_append(resolveList, entry) }

        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        let socketGuard = UnsafeMutablePointer<keyrotd_socket_guard>.allocate(capacity: 1)
        socketGuard.initialize(to: keyrotd_socket_guard(loopback_only: loopbackOnly(protocols: protocols) ? 1 : 0, refused: 0))
        defer { socketGuard.deallocate() }

        var options = CurlOptions(handle)
        configure(&options, request, protocols: protocolsOverride ?? protocols, socketGuard: socketGuard, headers: headers,
                  resolve: resolveList, errorBuffer: errorBuffer, transfer: transfer)
        if let failure = options.failure { return .failure(failure) }
        let code = curl_easy_perform(handle)

        guard code == CURLE_OK else {
            if socketGuard.pointee.refused != 0 {
                return .failure(HTTPError(code: .refusedURL, message: "refusing \(request.url): it resolved to an address that is not loopback, and plain http goes only to loopback"))
            }
            var connectCode = 0
            keyrotd_curl_getinfo_long(handle, CURLINFO_HTTP_CONNECTCODE, &connectCode)
            if [401, 403, 407].contains(connectCode) {
                let what = connectCode != 403 ? "proxy authentication failed (check proxy_credentials_file)" : "the proxy forbids this destination"
                return .failure(HTTPError(code: .proxy, message: "\(what): CONNECT answered \(connectCode)"))
            }
            let buffered = String(cString: errorBuffer)
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

    /// Every option of one request; `selfCheck` passes nil for what only a real transfer has.
    private func configure(
        _ options: inout CurlOptions, _ request: HTTPRequest, protocols: String,
        socketGuard: UnsafeMutablePointer<keyrotd_socket_guard>, headers: UnsafeMutablePointer<curl_slist>?,
        resolve: UnsafeMutablePointer<curl_slist>?, errorBuffer: UnsafeMutablePointer<CChar>?, transfer: Transfer?
    ) {
        options.set(CURLOPT_URL, request.url)
        options.set(CURLOPT_PROTOCOLS_STR, protocols)
        options.set(CURLOPT_REDIR_PROTOCOLS_STR, protocols)
        options.set(CURLOPT_FOLLOWLOCATION, 0)
        options.check(CURLOPT_OPENSOCKETFUNCTION, keyrotd_curl_set_socket_guard(options.handle, socketGuard))
        if let resolve { options.set(CURLOPT_RESOLVE, resolve) }
        configureProxy(&options)
        configureTLS(&options)
        options.set(CURLOPT_NOSIGNAL, 1)
        options.set(CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(connectTimeout))
        options.set(CURLOPT_TIMEOUT_MS, Self.milliseconds(totalTimeout))
        options.set(CURLOPT_LOW_SPEED_LIMIT, 1)
        options.set(CURLOPT_LOW_SPEED_TIME, max(1, Self.milliseconds(lowSpeedTime) / 1000))
        options.set(CURLOPT_HTTPHEADER, headers)
        if let errorBuffer { options.set(CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorBuffer)) }
        if let transfer {
            let context = Unmanaged.passUnretained(transfer).toOpaque()
            options.check(CURLOPT_WRITEFUNCTION, keyrotd_curl_setopt_write_callback(options.handle, CURLOPT_WRITEFUNCTION, writeCallback))
            options.set(CURLOPT_WRITEDATA, context)
            options.set(CURLOPT_NOPROGRESS, 0)
            options.check(CURLOPT_XFERINFOFUNCTION, keyrotd_curl_setopt_xferinfo_callback(options.handle, progressCallback))
            options.set(CURLOPT_XFERINFODATA, context)
        }
        switch request.method {
        case .get:
            options.set(CURLOPT_HTTPGET, 1)
        case .post, .patch:
            options.set(CURLOPT_POST, 1)
            if request.method == .patch { options.set(CURLOPT_CUSTOMREQUEST, "PATCH") }
            let body = request.body.flatMap { $0.isEmpty ? nil : $0 } ?? Array("{}".utf8)
            options.set(CURLOPT_POSTFIELDSIZE, body.count)
            // COPYPOSTFIELDS copies the bytes: they need not outlive this call.
            body.withUnsafeBytes { bytes in
                options.set(CURLOPT_COPYPOSTFIELDS, bytes.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) })
            }
        case .delete:
            options.set(CURLOPT_CUSTOMREQUEST, "DELETE")
        }
    }

    /// No proxy from the environment, ever: `CURLOPT_PROXY` is always set (empty:
    /// none) and `CURLOPT_NOPROXY` too, so `NO_PROXY` cannot send a request around
    /// the configured proxy. Through a proxy, always a CONNECT tunnel.
    private func configureProxy(_ options: inout CurlOptions) {
        options.set(CURLOPT_PROXY, egress.proxy ?? "")
        options.set(CURLOPT_NOPROXY, "")
        guard egress.proxy != nil else { return }
        let type = egress.proxyScheme == "https" ? CURLPROXY_HTTPS : CURLPROXY_HTTP
        options.set(CURLOPT_PROXYTYPE, Int(type.rawValue))
        options.set(CURLOPT_HTTPPROXYTUNNEL, 1)
        if let credentials = egress.proxyCredentials {
            options.set(CURLOPT_PROXYAUTH, keyrotd_curlauth_basic)
            options.set(CURLOPT_PROXYUSERNAME, credentials.user)
            credentials.password.withExposedText { options.set(CURLOPT_PROXYPASSWORD, $0) }
        }
    }

    /// TLS 1.2 at least and full verification, for the provider and an https proxy
    /// alike. `ca_file` in `add` mode is the CA file with the system's hashed CA
    /// directory kept beside it (with OpenSSL, `CURLOPT_CAINFO` alone replaces the
    /// system bundle); in `replace` mode it is the only trust.
    private func configureTLS(_ options: inout CurlOptions) {
        let tls12 = CURL_SSLVERSION_TLSv1_2
        for (version, verifyPeer, verifyHost) in [
            (CURLOPT_SSLVERSION, CURLOPT_SSL_VERIFYPEER, CURLOPT_SSL_VERIFYHOST),
            (CURLOPT_PROXY_SSLVERSION, CURLOPT_PROXY_SSL_VERIFYPEER, CURLOPT_PROXY_SSL_VERIFYHOST),
        ] {
            options.set(version, tls12)
            options.set(verifyPeer, 1)
            options.set(verifyHost, 2)
        }
        guard let caFile = egress.caFile else { return }
        for (info, path) in [(CURLOPT_CAINFO, CURLOPT_CAPATH), (CURLOPT_PROXY_CAINFO, CURLOPT_PROXY_CAPATH)] {
            options.set(info, caFile)
            switch egress.caMode {
            case .add: if let system = egress.systemCAPath { options.set(path, system) }
            case .replace: options.set(path, nil as String?)
            }
        }
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

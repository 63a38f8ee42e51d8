import AsyncHTTPClient
import GatewayCore
import KeyRotation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The provider the gateway forwards to: one AsyncHTTPClient with a connection pool
/// sized for many concurrent streams, timeouts from the configuration.
public final class Upstream: Sendable {
    let client: HTTPClient
    public let baseURL: String
    let headTimeout: TimeAmount

    public init(configuration: GatewayConfiguration) {
        var client = HTTPClient.Configuration()
        client.timeout = .init(connect: .seconds(10), read: .seconds(Int64(configuration.upstreamTimeoutSeconds)))
        client.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 4096)
        client.redirectConfiguration = .disallow
        client.decompression = .disabled
        client.httpVersion = .automatic
        self.client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: client)
        self.baseURL = configuration.upstream.url
        self.headTimeout = .seconds(Int64(configuration.upstreamTimeoutSeconds))
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    /// Sends one request with `key`; returns once the response head is in (the body streams).
    func send(method: HTTPMethod, path: String, body: [UInt8]?, accept: String?, key: UpstreamKey) async throws
        -> HTTPClientResponse
    {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        key.secret.withExposedText { request.headers.add(name: "Authorization", value: "Bearer \($0)") }
        request.headers.add(name: "Accept", value: accept ?? "application/json")
        request.headers.add(name: "User-Agent", value: "keyrotd-gateway")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return try await client.execute(request, timeout: headTimeout)
    }

    /// How an error from `send` is answered: 504 for a timeout, 502 otherwise.
    static func failure(_ error: any Error) -> GatewayErrorResponse {
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout {
            return GatewayErrorResponse(
                status: 504, message: "the upstream did not answer in time", type: "upstream_error", code: "upstream_timeout")
        }
        return GatewayErrorResponse(
            status: 502, message: "the upstream could not be reached: \(Self.describe(error))", type: "upstream_error",
            code: "upstream_unreachable")
    }

    /// Whether the request may have reached the provider (a timeout) or surely did not.
    static func mayHaveReachedProvider(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return error == .deadlineExceeded || error == .readTimeout || error == .remoteConnectionClosed
        }
        return false
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return error.description }
        return String(describing: error)
    }
}

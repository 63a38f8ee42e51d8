import AsyncHTTPClient
import Glibc
import Foundation
import KeyRotation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The CLI's side of the admin socket (`set-key`, `status`).
public struct AdminClient: Sendable {
    public var socketPath: String

    public init(socketPath: String) {
        self.socketPath = socketPath
    }

    public struct Failure: Error, CustomStringConvertible {
        /// Exit status: 69 (EX_UNAVAILABLE) when the gateway cannot be reached, 65 when it refused.
        public var exitCode: Int32
        public var description: String
    }

    /// Hands `secret` to the gateway as the current key of `name`; returns once the
    /// gateway has made it durable and uses it.
    public func setKey(name: String, secret: Secret, keyID: String?, generation: Int?) async throws(Failure) {
        var headers: [(String, String)] = []
        if let keyID { headers.append(("Keyrotd-Key-Id", keyID)) }
        if let generation { headers.append(("Keyrotd-Generation", String(generation))) }
        let body = secret.withExposedText { Array($0.utf8) }
        _ = try await request(.PUT, "/v1/keys/\(name)", body: body, headers: headers)
    }

    public func status() async throws(Failure) -> (report: StatusReport, json: [UInt8]) {
        let bytes = try await request(.GET, "/v1/status", body: nil, headers: [])
        do {
            return (try JSONDecoder().decode(StatusReport.self, from: Data(bytes)), bytes)
        } catch {
            throw Failure(exitCode: 76, description: "the gateway's status answer is not understood: \(error)")
        }
    }

    private func request(_ method: HTTPMethod, _ path: String, body: [UInt8]?, headers: [(String, String)])
        async throws(Failure) -> [UInt8]
    {
        // AsyncHTTPClient keeps retrying a connect that fails until its timeout; a missing
        // socket is answered at once.
        var info = stat()
        guard stat(socketPath, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else {
            throw Failure(
                exitCode: 69, description: "no gateway admin socket at \(socketPath): is keyrotd-gateway running?")
        }
        guard let url = URL(httpURLWithSocketPath: socketPath, uri: path) else {
            throw Failure(exitCode: 64, description: "\(socketPath) cannot be used as a socket path")
        }
        let client = HTTPClient(
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            configuration: .init(timeout: .init(connect: .seconds(3), read: .seconds(60))))
        let result = await exchange(client, method, url.absoluteString, body: body, headers: headers)
        try? await client.shutdown()
        return try result.get()
    }

    private func exchange(
        _ client: HTTPClient, _ method: HTTPMethod, _ url: String, body: [UInt8]?, headers: [(String, String)]
    ) async -> Result<[UInt8], Failure> {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response: HTTPClientResponse
        let answer: ByteBuffer
        do {
            response = try await client.execute(request, timeout: .seconds(30))
            answer = try await response.body.collect(upTo: 16 << 20)
        } catch {
            return .failure(Failure(exitCode: 69, description: "cannot reach the gateway at \(socketPath): \(error)"))
        }
        guard response.status == .ok else {
            let message = (try? JSONSerialization.jsonObject(with: Data(answer.readableBytesView)) as? [String: Any])?["message"]
                as? String ?? String(decoding: answer.readableBytesView, as: UTF8.self)
            return .failure(Failure(exitCode: 65, description: "the gateway refused (\(response.status.code)): \(message)"))
        }
        return .success(Array(answer.readableBytesView))
    }
}

import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import KeyRotation
import Logging
import NIOCore

/// The admin socket: only root and `admin_users` (checked by SO_PEERCRED) may use it.
///
/// - `PUT /v1/keys/NAME`: the body is the new secret of keyrotd key NAME; headers
///   `Keyrotd-Key-Id` and `Keyrotd-Generation` say which provider key it is. Answered
///   200 only once the key is durable and new requests use it.
/// - `GET /v1/status`: `StatusReport` as JSON.
public struct AdminResponder: Sendable {
    let gateway: GatewayResponder
    let logger: Logger

    public init(gateway: GatewayResponder, logger: Logger) {
        self.gateway = gateway
        self.logger = logger
    }

    public func respond(to request: Request, context: GatewayContext) async -> Response {
        let loaded = gateway.loaded
        guard let peer = await PeerCredentials.of(context.channel) else {
            return Self.error(403, "the caller's credentials could not be read from the socket")
        }
        guard loaded.adminUserIDs.contains(peer.uid) else {
            return Self.error(403, "Unix user id \(peer.uid) may not use the admin socket (only root and admin_users)")
        }
        let path = request.uri.path
        if request.method == .get, path == "/v1/status" {
            let report = await StatusReport.make(gateway: gateway)
            return Self.json(report)
        }
        let prefix = "/v1/keys/"
        if request.method == .put, path.hasPrefix(prefix) {
            return await setKey(String(path.dropFirst(prefix.count)), request, loaded)
        }
        return Self.error(404, "\(request.method.rawValue) \(path) is not an admin operation")
    }

    private func setKey(_ name: String, _ request: Request, _ loaded: LoadedGateway) async -> Response {
        guard ManagedKey.isValidName(name) else {
            return Self.error(400, "\"\(TerminalText.escaped(name))\" is not a keyrotd key name")
        }
        var request = request
        guard let body = try? await request.collectBody(upTo: 16 << 10) else {
            return Self.error(413, "a secret is at most 16 KiB")
        }
        var bytes = Array(body.readableBytesView)
        while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
        guard !bytes.isEmpty, let text = String(validating: bytes, as: UTF8.self),
            !text.contains(where: { $0.isWhitespace || $0.isNewline })
        else {
            return Self.error(400, "the secret must be one line of non-blank text")
        }
        let keyID = Self.keyIDHeader.flatMap { request.headers[$0] }.flatMap { $0.isEmpty ? nil : $0 }
        let generation = Self.generationHeader.flatMap { request.headers[$0] }.flatMap { Int($0) }
        let key = UpstreamKey(
            secret: Secret(text), keyID: keyID, generation: generation, receivedAt: Int64(Date().timeIntervalSince1970))
        do {
            try await gateway.store.setKey(key, named: name)
        } catch {
            logger.error(
                "cannot store the new key of \(name): \(error)",
                metadata: ["event": "key-store-failed", "upstream_key": .string(name)])
            return Self.error(503, "the key could not be stored durably (\(error)); the previous key stays in use")
        }
        let roles = loaded.configuration.roles.values.filter { $0.upstreamKey == name }.map(\.name).sorted()
        var metadata: Logger.Metadata = ["event": "key-set", "upstream_key": .string(name)]
        if let keyID { metadata["upstream_key_id"] = .string(keyID) }
        if let generation { metadata["generation"] = .stringConvertible(generation) }
        let user = roles.isEmpty ? "no role uses it yet" : "used by \(roles.joined(separator: ", "))"
        logger.notice(
            "new key for \(name)\(generation.map { " (generation \($0))" } ?? ""), \(user)", metadata: metadata)
        struct Answer: Encodable {
            var key: String
            var keyID: String?
            var generation: Int?
            var roles: [String]
            enum CodingKeys: String, CodingKey {
                case key, generation, roles
                case keyID = "key_id"
            }
        }
        return Self.json(Answer(key: name, keyID: keyID, generation: generation, roles: roles))
    }

    static let keyIDHeader = HTTPField.Name("Keyrotd-Key-Id")
    static let generationHeader = HTTPField.Name("Keyrotd-Generation")

    static func json(_ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: Int, _ message: String) -> Response {
        GatewayErrorResponse(status: status, message: message, type: "admin_error", code: "admin_error").response
    }
}

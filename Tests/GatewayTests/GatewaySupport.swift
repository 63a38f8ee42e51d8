import AsyncHTTPClient
import Crypto
import Foundation
import Glibc
import KeyRotation
import NIOCore
import NIOHTTP1
import NIOPosix
import TestSupport
import Testing

/// A TCP port nobody listens on right now (bound to port 0, then released).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}

func sha256Hex(_ text: String) -> String {
    SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
}

/// One role and client of a test configuration.
struct TestRole {
    var name: String
    var upstreamKey: String
    var models: [String]
    var extra: String = ""
}

/// A gateway and the local Mistral-compatible server it forwards to, in one scratch
/// directory: `gateway.toml`, `state/`, `api.sock`, `admin.sock`, `gateway.log`.
final class GatewayFixture: @unchecked Sendable {
    let scratch: Scratch
    let server: MistralServer
    let port: Int
    var process: ChildProcess?
    let http: HTTPClient
    /// Client name → bearer token.
    var tokens: [String: String] = [:]
    /// Upstream key name → the secret the server issued (seeded keys).
    var upstreamSecrets: [String: (id: String, secret: String)] = [:]
    var configPath: String { scratch.file("gateway.toml") }
    var adminSocket: String { scratch.file("admin.sock") }
    var unixSocket: String { scratch.file("api.sock") }
    var logPath: String { scratch.file("gateway.log") }
    var baseURL: String { "http://127.0.0.1:\(port)" }

    var roles: [TestRole]
    var clients: [(name: String, role: String)]
    var extraGateway: String
    var prices: String?
    var upstreamTimeout: String?
    /// Client tables written as they are (unix_user clients and the like).
    var extraClients = ""

    init(roles: [TestRole], clients: [(name: String, role: String)], extraGateway: String = "", prices: String? = nil)
        throws
    {
        scratch = try Scratch()
        server = try MistralServer(in: scratch)
        port = try freePort()
        http = HTTPClient(
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            configuration: .init(timeout: .init(connect: .seconds(5), read: .seconds(60))))
        self.roles = roles
        self.clients = clients
        self.extraGateway = extraGateway
        self.prices = prices
        for client in clients {
            tokens[client.name] = "krg_test_\(client.name)_\(UUID().uuidString)"
        }
        try rewriteConfig()
    }

    /// Writes gateway.toml from the fixture's roles, clients and settings.
    func rewriteConfig() throws {
        var text = """
            [gateway]
            listen = ["127.0.0.1:\(port)", "unix:\(unixSocket)"]
            admin_socket = "\(adminSocket)"
            state_directory = "\(scratch.file("state"))"
            upstream = "\(server.baseURL)"
            currency = "EUR"
            \(upstreamTimeout.map { "upstream_timeout = \"\($0)\"" } ?? "")
            \(extraGateway)

            """
        text += prices ?? """
            [prices."mistral-small-latest"]
            input = 0.1
            output = 0.3

            [prices."mistral-large-latest"]
            input = 2.0
            output = 6.0

            [prices."mistral-embed"]
            input = 0.1
            output = 0.0

            [prices."codestral-latest"]
            input = 0.3
            output = 0.9

            """
        for role in roles {
            text += """

                [roles.\(role.name)]
                upstream_key = "\(role.upstreamKey)"
                models = [\(role.models.map { "\"\($0)\"" }.joined(separator: ", "))]
                \(role.extra)

                """
        }
        for client in clients {
            text += """

                [clients.\(client.name)]
                role = "\(client.role)"
                token_sha256 = "\(sha256Hex(tokens[client.name] ?? ""))"

                """
        }
        text += extraClients
        try scratch.write("gateway.toml", text, mode: 0o600)
    }

    deinit {
        process?.stop()
        try? http.syncShutdown()
        server.stop()
        scratch.remove()
    }

    /// Starts `keyrotd-gateway run` and waits for READY=1 on a notify socket.
    func start() async throws {
        let notify = try NotifySocket(path: scratch.file("notify-\(UUID().uuidString.prefix(6)).sock"))
        process = try ChildProcess(
            gatewayBinary, ["run", "--config", configPath],
            environment: ["PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": notify.path, "SWIFT_BACKTRACE": "enable=no"],
            output: logPath)
        guard notify.receive(until: { $0.contains("READY=1") }, timeout: .seconds(30)) != nil else {
            throw FixtureError("the gateway did not become ready:\n\(log())")
        }
    }

    func stop() async -> Int32? {
        process?.signal(SIGTERM)
        let status = await process?.wait(timeout: .seconds(20))
        process = nil
        return status
    }

    func kill() async {
        process?.signal(SIGKILL)
        _ = await process?.wait(timeout: .seconds(10))
        process = nil
    }

    func log() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Creates a key at the local server and hands it to the gateway with `set-key`.
    @discardableResult
    func deliverNewKey(_ name: String, generation: Int = 1) async throws -> (id: String, secret: String) {
        let created = try await server.control(.post, "/_control/keys", ["name": "keyrotd/test/\(name)/g\(generation)"])
        guard let object = created as? [String: Any], let id = object["key_id"] as? String, let secret = object["key"] as? String else {
            throw FixtureError("the server did not return a key id and secret (fields: \((created as? [String: Any])?.keys.sorted() ?? []))")
        }
        let result = try setKey(name, secret: secret, keyID: id, generation: generation)
        guard result.status == 0 else { throw FixtureError("set-key failed (\(result.status)): \(result.output)") }
        upstreamSecrets[name] = (id, secret)
        return (id, secret)
    }

    /// Runs `keyrotd-gateway set-key NAME` with the secret on stdin (never in argv).
    func setKey(_ name: String, secret: String, keyID: String?, generation: Int?, socket: String? = nil) throws
        -> ToolRun
    {
        var environment = ["PATH": "/usr/bin:/bin"]
        if let keyID { environment["KEYROTD_KEY_ID"] = keyID }
        if let generation { environment["KEYROTD_GENERATION"] = String(generation) }
        return try runTool(
            gatewayBinary, ["set-key", name, "--socket", socket ?? adminSocket], stdin: secret + "\n",
            environment: environment)
    }

    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// One request over TCP with `client`'s token (or `bearer` as given).
    func request(
        _ path: String, method: HTTPMethod = .POST, client: String?, bearer: String? = nil, json: Any? = nil,
        raw: [UInt8]? = nil
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token = bearer ?? client.flatMap({ tokens[$0] }) {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
        } else if let raw {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: raw))
        }
        let response = try await http.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 64 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: Array(body.readableBytesView))
    }

    /// The journal lines (stderr in tests) of finished requests.
    func requestLines() -> [String] {
        log().split(separator: "\n").map(String.init).filter { $0.contains("event=request") || $0.contains(" /v1/") }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A chat request body.
func chat(_ model: String, _ text: String = "hello there gateway", stream: Bool = false, maxTokens: Int? = nil) -> [String: Any] {
    var body: [String: Any] = ["model": model, "messages": [["role": "user", "content": text]]]
    if stream { body["stream"] = true }
    if let maxTokens { body["max_tokens"] = maxTokens }
    return body
}

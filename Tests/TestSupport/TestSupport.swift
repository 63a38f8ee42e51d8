import Foundation
import Glibc
import KeyRotation
import KeyRotationAdapters

/// The repository's root, for scripts and shipped files.
public let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A fresh directory under /tmp, removed by `remove()`.
public struct Scratch: Sendable {
    public let url: URL

    public init() throws {
        url = URL(fileURLWithPath: "/tmp").appendingPathComponent("keyrotd-e2e-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public var path: String { url.path }

    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    @discardableResult
    public func write(_ name: String, _ text: String, mode: Int = 0o644) throws -> String {
        let path = file(name)
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: mode])
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    public func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}

/// The local Mistral-compatible server (`scripts/mistral-server`) on a free port.
public final class MistralServer: @unchecked Sendable {
    let process: ChildProcess
    public let port: Int
    public let adminKeyFile: String
    public let adminKey: Secret
    public let tls: TestCA.Issued?
    private let http: HTTPClient

    /// https when `tls` names a certificate and key (`TestCA.issue`); then the control
    /// calls trust `tls.caFile`.
    public init(in scratch: Scratch, tls: TestCA.Issued? = nil) throws {
        let key = "admin-\(UUID().uuidString)"
        adminKey = Secret(key)
        adminKeyFile = try scratch.write("admin-key", key + "\n", mode: 0o600)
        self.tls = tls
        http = HTTPClient(
            connectTimeout: .seconds(5), totalTimeout: .seconds(10),
            egress: HTTPEgress(caFile: tls?.caFile, caMode: .replace))
        let portFile = scratch.file("server.port")
        let tlsArguments = tls.map { ["--tls-cert", $0.certificateFile, "--tls-key", $0.keyFile] } ?? []
        process = try ChildProcess(
            repositoryRoot.appendingPathComponent("scripts/mistral-server").path,
            ["--port", "0", "--port-file", portFile, "--admin-key-file", adminKeyFile, "--log-file", scratch.file("requests.jsonl")]
                + tlsArguments,
            environment: ["PATH": "/usr/local/bin:/usr/bin:/bin"], output: scratch.file("server.err"))
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                self.port = port
                return
            }
            if process.poll() != nil { break }
            usleep(50_000)
        }
        process.stop()
        throw ServerError(message: "the local server did not report its port")
    }

    public struct ServerError: Error { public var message: String }

    public var baseURL: String { "\(tls == nil ? "http" : "https")://127.0.0.1:\(port)" }

    public func stop() {
        process.stop()
    }

    public func control(_ method: HTTPRequest.Method, _ path: String, _ body: Any? = nil) async throws -> Any {
        let bytes = try body.map { Array(try JSONSerialization.data(withJSONObject: $0)) }
        let response = try await http.perform(HTTPRequest(method: method, url: baseURL + path, bearer: nil, body: bytes))
        guard (200..<300).contains(response.status) else { throw ServerError(message: "\(method.rawValue) \(path): \(response.status)") }
        return try JSONSerialization.jsonObject(with: Data(response.body), options: [.fragmentsAllowed])
    }

    /// Every key the server ever created (deleted ones too), no secrets.
    public func keys() async throws -> [[String: Any]] {
        try await control(.get, "/_control/keys") as? [[String: Any]] ?? []
    }

    public func requestLog() async throws -> [[String: Any]] {
        try await control(.get, "/_control/log") as? [[String: Any]] ?? []
    }

    public func accepts(_ secret: Secret) async -> Bool {
        let response = try? await http.perform(HTTPRequest(method: .get, url: baseURL + "/v1/models", bearer: secret))
        return response?.status == 200
    }
}

/// Polls `condition` every 200 ms until it holds or `seconds` pass.
public func waitFor(seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(200))
    }
    return try await condition()
}

/// A child process started with `posix_spawn` and a clean signal state (empty mask,
/// default dispositions), whatever the spawning thread blocks: Foundation's
/// `Process` on Linux passes the spawning thread's signal mask on, and a daemon
/// started with SIGTERM blocked would never hear it.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private var status: Int32?

    /// stdin from /dev/null; stdout and stderr appended to `output` (or /dev/null).
    public init(_ executable: String, _ arguments: [String], environment: [String: String], output: String?) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else the test process has open reaches the child: a long-lived child
        // holding, say, the write end of a hook's output pipe would keep that hook's
        // runner waiting for EOF.
        // (glibc 2.34+; not exported to Swift, so looked up by name.)
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else {
            throw POSIXError(.ENOSYS)
        }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO) }
        self.pid = pid
    }

    public func signal(_ number: Int32) {
        if status == nil { kill(pid, number) }
    }

    /// The exit status (128 + signal when killed), reaping the child; nil while it runs.
    public func poll() -> Int32? {
        if let status { return status }
        var raw: Int32 = 0
        guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
        let exited = raw & 0x7f == 0
        status = exited ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        return status
    }

    /// Waits up to `timeout` for the child to exit.
    public func wait(timeout: Duration) async -> Int32? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while poll() == nil && clock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return poll()
    }

    /// SIGTERM, then SIGKILL if it has not exited within a few seconds; reaped either way.
    public func stop() {
        signal(SIGTERM)
        for _ in 0..<100 where poll() == nil { usleep(30_000) }
        signal(SIGKILL)
        while poll() == nil { usleep(10_000) }
    }
}

/// A NOTIFY_SOCKET a test listens on, as systemd does: an AF_UNIX datagram socket.
public final class NotifySocket: @unchecked Sendable {
    public let path: String
    private let fd: Int32

    public init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The next datagram, or nil after `timeout`.
    public func receive(timeout: Duration) -> String? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let (seconds, attoseconds) = timeout.components
        let milliseconds = Int32(seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        guard poll(&poller, 1, milliseconds) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }

    /// Datagrams until one satisfies `match` (returned last), or nil after `timeout`.
    public func receive(until match: (String) -> Bool, timeout: Duration) -> [String]? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var seen: [String] = []
        while clock.now < deadline {
            guard let message = receive(timeout: deadline - clock.now) else { break }
            seen.append(message)
            if match(message) { return seen }
        }
        return nil
    }
}

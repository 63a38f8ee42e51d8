import Foundation
import Glibc

/// A throwaway certificate authority made with the real `openssl`, and server
/// certificates it signs (SAN 127.0.0.1 and localhost).
public struct TestCA: Sendable {
    public let caFile: String
    let keyFile: String
    let scratch: Scratch
    let name: String

    public struct Issued: Sendable {
        public let certificateFile: String
        public let keyFile: String
        /// The CA that signed it: what a client must trust.
        public let caFile: String
    }

    public init(in scratch: Scratch, name: String = "ca") async throws {
        self.scratch = scratch
        self.name = name
        caFile = scratch.file("\(name).pem")
        keyFile = scratch.file("\(name).key")
        try await runToCompletion("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", keyFile, "-out", caFile, "-days", "2", "-subj", "/CN=keyrotd test \(name)",
        ], in: scratch)
    }

    public func issue(_ serverName: String = "server") async throws -> Issued {
        let key = scratch.file("\(name)-\(serverName).key")
        let request = scratch.file("\(name)-\(serverName).csr")
        let certificate = scratch.file("\(name)-\(serverName).pem")
        let extensions = try scratch.write("\(name)-\(serverName).ext", """
            subjectAltName = IP:127.0.0.1, DNS:localhost
            basicConstraints = CA:FALSE
            keyUsage = digitalSignature
            extendedKeyUsage = serverAuth

            """)
        try await runToCompletion("/usr/bin/openssl", [
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", request, "-subj", "/CN=localhost",
        ], in: scratch)
        try await runToCompletion("/usr/bin/openssl", [
            "x509", "-req", "-in", request, "-CA", caFile, "-CAkey", keyFile, "-CAcreateserial",
            "-out", certificate, "-days", "2", "-extfile", extensions,
        ], in: scratch)
        return Issued(certificateFile: certificate, keyFile: key, caFile: caFile)
    }

    /// A directory of this CA's certificate under its OpenSSL hash name, as
    /// /etc/ssl/certs holds the system's (`openssl rehash`).
    public func hashedDirectory() async throws -> String {
        let directory = scratch.file("\(name)-hashed")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: caFile, toPath: directory + "/\(name).pem")
        try await runToCompletion("/usr/bin/openssl", ["rehash", directory], in: scratch)
        return directory
    }
}

/// Runs a tool to completion; throws unless it exits 0 (its output goes to a log in `scratch`).
public func runToCompletion(_ executable: String, _ arguments: [String], in scratch: Scratch) async throws {
    let log = scratch.file("tools.log")
    let process = try ChildProcess(executable, arguments, environment: ["PATH": "/usr/bin:/bin"], output: log)
    for _ in 0..<600 where process.poll() == nil { try await Task.sleep(for: .milliseconds(50)) }
    guard let status = process.poll() else {
        process.stop()
        throw MistralServer.ServerError(message: "\(executable) \(arguments.first ?? "") did not finish")
    }
    guard status == 0 else {
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        throw MistralServer.ServerError(message: "\(executable) \(arguments.joined(separator: " ")) exited \(status): \(output)")
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released: a tool that cannot take
/// port 0 then binds it; the race with other processes is harmless in practice).
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(fd, pointer, length) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
    }
    guard bound == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Waits up to 10 s for `process` to accept connections on 127.0.0.1:`port`; stops it and throws otherwise.
func awaitListening(_ process: ChildProcess, port: Int, what: String) async throws {
    for _ in 0..<200 {
        if TinyProxy.accepts(port: port) { return }
        if process.poll() != nil { break }
        try await Task.sleep(for: .milliseconds(50))
    }
    process.stop()
    throw MistralServer.ServerError(message: "\(what) did not start on port \(port)")
}

/// Debian's tinyproxy on loopback, in the foreground, as a child of the test;
/// its log (LogLevel Connect) records every CONNECT it was asked for.
public final class TinyProxy: @unchecked Sendable {
    let process: ChildProcess
    public let port: Int
    public let logFile: String

    /// `basicAuth`: (user, password) the proxy demands.
    public init(in scratch: Scratch, name: String = "tinyproxy", basicAuth: (String, String)? = nil) async throws {
        port = try freeLoopbackPort()
        logFile = scratch.file("\(name).log")
        var config = """
            Port \(port)
            Listen 127.0.0.1
            Timeout 30
            LogFile "\(logFile)"
            LogLevel Connect
            MaxClients 20
            Allow 127.0.0.1

            """
        if let (user, password) = basicAuth { config += "BasicAuth \(user) \(password)\n" }
        let configFile = try scratch.write("\(name).conf", config, mode: 0o600)
        process = try ChildProcess(
            "/usr/bin/tinyproxy", ["-d", "-c", configFile], environment: ["PATH": "/usr/bin:/bin"],
            output: scratch.file("\(name).out"))
        try await awaitListening(process, port: port, what: "tinyproxy")
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// The CONNECT requests the proxy was asked for ("127.0.0.1:PORT").
    public func connects() -> [String] {
        let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
        return log.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "Request (file descriptor ") else { return nil }
            let rest = line[range.upperBound...]
            guard let connect = rest.range(of: "CONNECT ") else { return nil }
            return rest[connect.upperBound...].split(separator: " ").first.map(String.init)
        }
    }

    public func log() -> String {
        (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
    }

    public func stop() {
        process.stop()
    }

    public static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// An https proxy from parts that install no service: socat terminating TLS (a
/// certificate from a test CA) on loopback in front of a `TinyProxy`, both children
/// of the test on free ports. (Debian's squid would do it alone, but installing it
/// enables a system-wide proxy service on port 3128.) The tinyproxy behind it logs
/// every CONNECT, so a tunnel through the https proxy is visible there.
public final class SocatHTTPSProxy: @unchecked Sendable {
    let socat: ChildProcess
    let behind: TinyProxy
    public let port: Int

    public init(in scratch: Scratch, certificate: TestCA.Issued) async throws {
        behind = try await TinyProxy(in: scratch, name: "tinyproxy-behind-tls")
        port = try freeLoopbackPort()
        // verify=0: socat asks no client certificate (keyrotd presents none).
        let listen = "OPENSSL-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork,verify=0"
            + ",cert=\(certificate.certificateFile),key=\(certificate.keyFile)"
        do {
            socat = try ChildProcess(
                "/usr/bin/socat", [listen, "TCP:127.0.0.1:\(behind.port)"], environment: ["PATH": "/usr/bin:/bin"],
                output: scratch.file("socat.out"))
            try await awaitListening(socat, port: port, what: "socat")
        } catch {
            behind.stop()
            throw error
        }
    }

    public var url: String { "https://127.0.0.1:\(port)" }

    /// The CONNECT targets the tinyproxy behind the TLS was asked for ("127.0.0.1:PORT").
    public func connects() -> [String] {
        behind.connects()
    }

    /// Stops socat and the connection handlers it forked (socat 1.7.4 leaves them
    /// running when it gets SIGTERM), then the tinyproxy. socat is stopped first
    /// (SIGSTOP) so it neither forks nor reaps meanwhile: a handler that exits then
    /// stays a zombie, so its pid cannot be reused before the kill reaches it.
    public func stop() {
        socat.signal(SIGSTOP)
        for handler in childProcesses(of: socat.pid) { kill(handler, SIGKILL) }
        socat.signal(SIGCONT)
        socat.stop()
        behind.stop()
    }
}

/// The pids whose parent is `parent`, from /proc/PID/stat (/proc/PID/task/PID/children
/// needs CONFIG_PROC_CHILDREN, which this machine's kernel lacks).
func childProcesses(of parent: pid_t) -> [pid_t] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry -> pid_t? in
        guard let pid = pid_t(entry),
              let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
              let commandEnd = stat.range(of: ")", options: .backwards)
        else { return nil }
        // After "(comm)": state, then the parent's pid.
        let fields = stat[commandEnd.upperBound...].split(separator: " ")
        return fields.count > 1 && pid_t(fields[1]) == parent ? pid : nil
    }
}

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

    public init(in scratch: Scratch, name: String = "ca") throws {
        self.scratch = scratch
        self.name = name
        caFile = scratch.file("\(name).pem")
        keyFile = scratch.file("\(name).key")
        try runToCompletion("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", keyFile, "-out", caFile, "-days", "2", "-subj", "/CN=keyrotd test \(name)",
        ], in: scratch)
    }

    public func issue(_ serverName: String = "server") throws -> Issued {
        let key = scratch.file("\(name)-\(serverName).key")
        let request = scratch.file("\(name)-\(serverName).csr")
        let certificate = scratch.file("\(name)-\(serverName).pem")
        let extensions = try scratch.write("\(name)-\(serverName).ext", """
            subjectAltName = IP:127.0.0.1, DNS:localhost
            basicConstraints = CA:FALSE
            keyUsage = digitalSignature
            extendedKeyUsage = serverAuth

            """)
        try runToCompletion("/usr/bin/openssl", [
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", request, "-subj", "/CN=localhost",
        ], in: scratch)
        try runToCompletion("/usr/bin/openssl", [
            "x509", "-req", "-in", request, "-CA", caFile, "-CAkey", keyFile, "-CAcreateserial",
            "-out", certificate, "-days", "2", "-extfile", extensions,
        ], in: scratch)
        return Issued(certificateFile: certificate, keyFile: key, caFile: caFile)
    }

    /// A directory of this CA's certificate under its OpenSSL hash name, as
    /// /etc/ssl/certs holds the system's (`openssl rehash`).
    public func hashedDirectory() throws -> String {
        let directory = scratch.file("\(name)-hashed")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: caFile, toPath: directory + "/\(name).pem")
        try runToCompletion("/usr/bin/openssl", ["rehash", directory], in: scratch)
        return directory
    }
}

/// Runs a tool to completion; throws unless it exits 0 (its output goes to a log in `scratch`).
public func runToCompletion(_ executable: String, _ arguments: [String], in scratch: Scratch) throws {
    let log = scratch.file("tools.log")
    let process = try ChildProcess(executable, arguments, environment: ["PATH": "/usr/bin:/bin"], output: log)
    for _ in 0..<600 where process.poll() == nil { usleep(50_000) }
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
func awaitListening(_ process: ChildProcess, port: Int, what: String) throws {
    for _ in 0..<200 {
        if TinyProxy.accepts(port: port) { return }
        if process.poll() != nil { break }
        usleep(50_000)
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
    public init(in scratch: Scratch, name: String = "tinyproxy", basicAuth: (String, String)? = nil) throws {
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
        try awaitListening(process, port: port, what: "tinyproxy")
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

/// Debian's squid as an https proxy (`https_port`, TLS with a certificate from a
/// test CA) on loopback, in the foreground (`-N`), as a child of the test. Its
/// access log records every CONNECT.
public final class SquidHTTPSProxy: @unchecked Sendable {
    let process: ChildProcess
    public let port: Int
    let directory: String

    public init(in scratch: Scratch, certificate: TestCA.Issued) throws {
        port = try freeLoopbackPort()
        // squid drops to the `proxy` user: its logs go to a directory that user can write.
        directory = scratch.file("squid")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: scratch.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: certificate.keyFile)
        let config = try scratch.write("squid.conf", """
            https_port 127.0.0.1:\(port) tls-cert=\(certificate.certificateFile) tls-key=\(certificate.keyFile)
            http_port 127.0.0.1:\(try freeLoopbackPort())
            acl loopback src 127.0.0.1
            http_access allow loopback
            http_access deny all
            cache deny all
            access_log stdio:\(directory)/access.log
            cache_log \(directory)/cache.log
            pid_filename \(directory)/squid.pid
            coredump_dir \(directory)
            pinger_enable off
            shutdown_lifetime 0 seconds

            """)
        process = try ChildProcess(
            "/usr/sbin/squid", ["-N", "-f", config], environment: ["PATH": "/usr/sbin:/usr/bin:/bin"],
            output: scratch.file("squid.out"))
        try awaitListening(process, port: port, what: "squid")
    }

    public var url: String { "https://127.0.0.1:\(port)" }

    /// The CONNECT targets in the access log ("127.0.0.1:PORT").
    public func connects() -> [String] {
        let log = (try? String(contentsOfFile: directory + "/access.log", encoding: .utf8)) ?? ""
        return log.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let index = fields.firstIndex(of: "CONNECT"), index + 1 < fields.count else { return nil }
            return String(fields[index + 1])
        }
    }

    public func stop() {
        process.stop()
    }
}

import Foundation
import Glibc
import KeyRotation
@testable import KeyRotationAdapters
import TestSupport
import Testing

/// Plain http reaches loopback only: the URL check agrees with the real
/// `inet_pton`, and libcurl itself refuses a socket to any other peer.
@Suite struct LoopbackGuardTests {
    /// `LoopbackAddress.ipv4Octets` (pure core, no Glibc) reads exactly what
    /// `inet_pton(AF_INET)` reads, over a table and 20 000 seeded random strings.
    @Test func strictDottedQuadAgreesWithInetPton() {
        var inputs = [
            "127.0.0.1", "127.0.0.08", "127.0.0.010", "127.1", "0x7f.0.0.1", "127.0.0.1.", "1.2.3.4", "255.255.255.255",
            "256.0.0.1", "00.0.0.0", "0.0.0.0", "1.2.3", "1.2.3.4.5", "", ".", "...", "1..2.3", "01.2.3.4", "1.2.3.04",
            "127.000.0.1", "1.2.3.-4", "1.2.3.+4", "1.2.3.4 ", " 1.2.3.4", "0127.0.0.1", "2130706433", "9.9.9.999",
        ]
        var random = SplitMix64(seed: 0x6b65_7972_6f74_64)
        let alphabet = Array("0123456789.x+- ")
        for _ in 0..<10_000 {
            let length = Int(random.next() % 18) + 1
            inputs.append(String((0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }))
        }
        for _ in 0..<10_000 {  // near-quads: octets 0–300, now and then zero-padded, 3 to 5 parts
            let parts = Int(random.next() % 3) + 3
            inputs.append((0..<parts).map { _ -> String in
                let value = String(random.next() % 301)
                return random.next() % 8 == 0 ? "0" + value : value
            }.joined(separator: "."))
        }
        var disagreements: [String] = []
        for input in inputs {
            var address = in_addr()
            let pton = inet_pton(AF_INET, input, &address) == 1
                ? withUnsafeBytes(of: address) { Array($0) } : nil
            if LoopbackAddress.ipv4Octets(Substring(input)) != pton { disagreements.append(input) }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(20))")
        #expect(inputs.count == 20_027)
    }

    /// Every host the rule accepts is, for `inet_pton`, a loopback address (or is
    /// `localhost`, which libcurl resolves to loopback itself).
    @Test func everyAcceptedHostIsLoopbackForInetPton() {
        for host in ["127.0.0.1", "127.255.0.9", "::1", "[::1]", "localhost", "LocalHost"] {
            #expect(LoopbackAddress.contains(host))
            let bare = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            var v4 = in_addr()
            var v6 = in6_addr()
            if inet_pton(AF_INET, bare, &v4) == 1 {
                #expect(UInt32(bigEndian: v4.s_addr) >> 24 == 127)
            } else if inet_pton(AF_INET6, bare, &v6) == 1 {
                #expect(withUnsafeBytes(of: v6) { Array($0) } == Array(repeating: 0, count: 15) + [1])
            } else {
                #expect(bare == "localhost")
            }
        }
    }

    /// A host name the URL check accepts (`localhost`) but that resolves elsewhere:
    /// libcurl's socket guard refuses it before connecting, so the bearer never
    /// leaves. The listener on this machine's own non-loopback address would see
    /// the connection (and the admin key in clear) without the guard.
    @Test func plainHTTPToANameResolvingElsewhereNeverConnects() async throws {
        let address = try #require(Self.nonLoopbackAddress(), "this test needs a non-loopback IPv4 address")
        let listener = try Listener(address: address)
        defer { listener.close() }
        var client = HTTPClient(connectTimeout: .seconds(2), totalTimeout: .seconds(3), lowSpeedTime: .seconds(2))
        client.resolve = ["localhost:\(listener.port):\(address)"]
        let outcome: HTTPError.Code?
        do {
            _ = try await client.perform(HTTPRequest(
                method: .get, url: "http://localhost:\(listener.port)/v1/models", bearer: Secret("admin-sentinel")))
            outcome = nil
        } catch {
            outcome = error.code
        }
        #expect(outcome == .refusedURL)
        #expect(!listener.hasPendingConnection(), "libcurl connected to \(address)")
    }

    /// Proxy credentials over a plain-http proxy go only to a loopback peer: a proxy
    /// name that resolves elsewhere is refused before the credentials leave.
    @Test func proxyCredentialsOverPlainHTTPGoOnlyToLoopback() async throws {
        let address = try #require(Self.nonLoopbackAddress(), "this test needs a non-loopback IPv4 address")
        let listener = try Listener(address: address)
        defer { listener.close() }
        let credentials = ProxyCredentials(user: "keyrotd", password: Secret("proxy-sentinel"))
        var client = HTTPClient(
            connectTimeout: .seconds(2), totalTimeout: .seconds(3), lowSpeedTime: .seconds(2),
            egress: HTTPEgress(proxy: "http://localhost:\(listener.port)", proxyCredentials: credentials))
        client.resolve = ["localhost:\(listener.port):\(address)"]
        var outcome: HTTPError.Code?
        do {
            _ = try await client.perform(HTTPRequest(method: .get, url: "https://127.0.0.1:9/v1/models", bearer: Secret("admin-sentinel")))
        } catch {
            outcome = error.code
        }
        #expect(outcome == .refusedURL)
        #expect(!listener.hasPendingConnection(), "libcurl connected to the proxy at \(address)")
    }

    /// The same guard lets loopback through: the local server answers.
    @Test func plainHTTPToLoopbackStillWorks() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try MistralServer(in: scratch)
        defer { server.stop() }
        var client = HTTPClient(connectTimeout: .seconds(2), totalTimeout: .seconds(5))
        client.resolve = ["localhost:\(server.port):127.0.0.1"]
        let response = try await client.perform(HTTPRequest(
            method: .get, url: "http://localhost:\(server.port)/v1/admin/api-keys", bearer: server.adminKey))
        #expect(response.status == 200)
    }

    /// An option libcurl refuses (here a protocol list it does not know, as a
    /// libcurl older than 7.85 refuses CURLOPT_PROTOCOLS_STR) stops the request
    /// before it starts, and `selfCheck` reports it; ignored, it would let libcurl
    /// use every protocol it has.
    @Test func aRefusedOptionStopsTheRequestBeforeItStarts() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try MistralServer(in: scratch)
        defer { server.stop() }
        var client = HTTPClient(connectTimeout: .seconds(2), totalTimeout: .seconds(5))
        client.protocolsOverride = "http,no-such-protocol"
        var failure: HTTPError?
        do {
            _ = try await client.perform(HTTPRequest(method: .get, url: server.baseURL + "/v1/models", bearer: server.adminKey))
        } catch {
            failure = error
        }
        #expect(failure?.code == .setup)
        #expect(failure?.message.contains("CURLOPT_PROTOCOLS_STR") == true, "\(String(describing: failure))")
        #expect(try await server.requestLog().filter { $0["path"] as? String == "/v1/models" }.isEmpty)
        #expect(throws: HTTPError.self) { try client.selfCheck() }
        #expect(throws: Never.self) { try HTTPClient().selfCheck() }
    }

    // MARK: Helpers

    static func nonLoopbackAddress() -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        var entry: UnsafeMutablePointer<ifaddrs>? = first
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            guard let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            let v4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            guard UInt32(bigEndian: v4.s_addr) >> 24 != 127 else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            var copy = v4
            guard inet_ntop(AF_INET, &copy, &text, socklen_t(text.count)) != nil else { continue }
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return nil
    }

    /// A TCP listener that never accepts: a connection attempt would stay pending.
    final class Listener {
        let fd: Int32
        let port: Int

        init(address: String) throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw POSIXError(.EIO) }
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_addr.s_addr = inet_addr(address)
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(fd, pointer, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, pointer, &length) == 0
                }
            }
            guard ok else {
                Glibc.close(fd)
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
            self.fd = fd
            port = Int(UInt16(bigEndian: socketAddress.sin_port))
        }

        func hasPendingConnection() -> Bool {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return poll(&poller, 1, 200) == 1
        }

        func close() {
            Glibc.close(fd)
        }
    }
}

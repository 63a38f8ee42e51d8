import Foundation
import Glibc
import KeyRotation
@testable import KeyRotationAdapters
import TestSupport
import Testing

/// The provider through a real tinyproxy on loopback to a real TLS server signed
/// by a test CA (made with openssl): the configured proxy and CA are used, nothing
/// from the environment is, and proxy credentials work without showing up anywhere.
@Suite(.serialized) struct EgressProxyTests {
    final class Fixture {
        let scratch: Scratch
        let ca: TestCA
        let server: MistralServer
        let proxy: TinyProxy

        init(proxyAuth: (String, String)? = nil) async throws {
            scratch = try Scratch()
            ca = try await TestCA(in: scratch)
            server = try MistralServer(in: scratch, tls: try await ca.issue())
            proxy = try await TinyProxy(in: scratch, basicAuth: proxyAuth)
        }

        deinit {
            proxy.stop()
            server.stop()
            scratch.remove()
        }

        var target: String { "127.0.0.1:\(server.port)" }

        func provider(_ egress: HTTPEgress) -> MistralProvider {
            MistralProvider(
                baseURL: server.baseURL, adminKey: server.adminKey, requestsPerMinute: 60000,
                http: HTTPClient(connectTimeout: .seconds(3), totalTimeout: .seconds(8), lowSpeedTime: .seconds(3), egress: egress))
        }

        func adminCalls() async throws -> Int {
            try await server.requestLog().filter { ($0["path"] as? String)?.hasPrefix("/v1/admin/") == true }.count
        }

        /// `keyrotd-testhelper http-get` in a process with exactly `environment`.
        func helperGet(_ url: String, ca: String?, proxy: String?, environment: [String: String]) async throws -> String {
            let helper = try #require(TestHelper.url, "keyrotd-testhelper not found; build with swift build --build-tests")
            let output = scratch.file("helper-\(UUID().uuidString.prefix(6)).out")
            let child = try ChildProcess(helper.path, ["http-get", url, ca ?? "-", proxy ?? "-"], environment: environment, output: output)
            let status = await child.wait(timeout: .seconds(20))
            if status == nil { child.stop() }
            return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        }
    }

    @Test func throughTheConfiguredProxyWithTheConfiguredCA() async throws {
        let f = try await Fixture()
        let provider = f.provider(HTTPEgress(proxy: f.proxy.url, caFile: f.ca.caFile, caMode: .replace))
        let created = try await provider.createKey(
            name: "keyrotd/proxy/g1/aaaaaa", expiration: Date() + 86400 * 30,
            workspace: MistralProviderTests.workspace, user: MistralProviderTests.user)
        try await provider.verifyKey(secret: created.secret)
        #expect(try await provider.listKeys(nameContains: "keyrotd/proxy/").map(\.id) == [created.id])
        // One tunnel per request (no connection reuse across handles): every call went through the proxy.
        #expect(f.proxy.connects().count == 3)
        #expect(Set(f.proxy.connects()) == [f.target])
        let log = f.proxy.log()
        #expect(!log.contains(f.server.adminKey.withExposedText { $0 }))
        #expect(!log.contains(created.secret.withExposedText { $0 }))
        #expect(!log.contains("Bearer"))
    }

    @Test func withoutTheCATheTLSFailureBlocks() async throws {
        let f = try await Fixture()
        let provider = f.provider(HTTPEgress(proxy: f.proxy.url))
        var failure: StepFailure?
        do { _ = try await provider.listKeys(nameContains: nil) } catch { failure = error }
        #expect(failure?.code == "tls")
        #expect(failure?.kind == .needsOperator)
        #expect(f.proxy.connects() == [f.target])
        #expect(try await f.adminCalls() == 0)
    }

    /// `add` keeps the system store (here a stand-in hashed directory holding a
    /// second CA, which signed the server) beside `ca_file`; `replace` drops it.
    @Test func addKeepsTheSystemStoreAndReplaceDropsIt() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let system = try await TestCA(in: scratch, name: "system")
        let extra = try await TestCA(in: scratch, name: "extra")
        let server = try MistralServer(in: scratch, tls: try await system.issue())
        defer { server.stop() }
        func list(_ mode: CAMode) async -> StepFailure? {
            var egress = HTTPEgress(caFile: extra.caFile, caMode: mode)
            egress.systemCAPath = try? await system.hashedDirectory()
            let provider = MistralProvider(
                baseURL: server.baseURL, adminKey: server.adminKey, requestsPerMinute: 60000,
                http: HTTPClient(connectTimeout: .seconds(3), totalTimeout: .seconds(8), egress: egress))
            do {
                _ = try await provider.listKeys(nameContains: nil)
                return nil
            } catch {
                return error
            }
        }
        #expect(await list(.add) == nil)
        #expect(await list(.replace)?.code == "tls")
        // Without ca_file at all, only the real system store: the test CA is unknown there.
        let plain = MistralProvider(
            baseURL: server.baseURL, adminKey: server.adminKey, requestsPerMinute: 60000,
            http: HTTPClient(connectTimeout: .seconds(3), totalTimeout: .seconds(8)))
        await #expect(throws: StepFailure.self) { _ = try await plain.listKeys(nameContains: nil) }
    }

    /// http_proxy, HTTPS_PROXY, ALL_PROXY in the client's environment are ignored
    /// (the proxy sees nothing), and NO_PROXY cannot route around a configured proxy.
    @Test func proxiesInTheEnvironmentAreIgnored() async throws {
        let f = try await Fixture()
        let url = f.server.baseURL + "/v1/models"
        let viaEnvironment = ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"]
            .reduce(into: ["PATH": "/usr/bin:/bin"]) { $0[$1] = f.proxy.url }
        let direct = try await f.helperGet(url, ca: f.ca.caFile, proxy: nil, environment: viaEnvironment)
        #expect(direct.contains("status 401"), "\(direct)")  // the probe bearer is no key: the server answered directly
        #expect(f.proxy.connects().isEmpty)

        let bypass = ["PATH": "/usr/bin:/bin", "NO_PROXY": "*", "no_proxy": "127.0.0.1,localhost"]
        let proxied = try await f.helperGet(url, ca: f.ca.caFile, proxy: f.proxy.url, environment: bypass)
        #expect(proxied.contains("status 401"), "\(proxied)")
        #expect(f.proxy.connects() == [f.target])
    }

    /// An https proxy (socat's TLS in front of a tinyproxy) is verified like the
    /// provider, with `ca_file`: trusted, the request goes through it; without the CA
    /// the proxy's certificate is refused.
    @Test func anHTTPSProxyIsVerifiedWithTheCA() async throws {
        let f = try await Fixture()
        let httpsProxy = try await SocatHTTPSProxy(in: f.scratch, certificate: try await f.ca.issue("https-proxy"))
        defer { httpsProxy.stop() }
        let trusted = f.provider(HTTPEgress(proxy: httpsProxy.url, caFile: f.ca.caFile, caMode: .replace))
        #expect(try await trusted.listKeys(nameContains: nil).isEmpty)
        #expect(try await waitFor(seconds: 5) { httpsProxy.connects() == [f.target] })

        let untrusted = f.provider(HTTPEgress(proxy: httpsProxy.url))
        var failure: StepFailure?
        do { _ = try await untrusted.listKeys(nameContains: nil) } catch { failure = error }
        #expect(failure?.code == "tls", "\(String(describing: failure))")
        #expect(try await f.adminCalls() == 1)
    }

    /// A plain-http URL never goes through a proxy (CONNECT or not, the proxy would see it).
    @Test func plainHTTPIsNeverSentThroughAProxy() async throws {
        let f = try await Fixture()
        let client = HTTPClient(connectTimeout: .seconds(3), totalTimeout: .seconds(5), egress: HTTPEgress(proxy: f.proxy.url))
        await #expect(throws: HTTPError(code: .refusedURL, message: "refusing http://127.0.0.1:9/v1/models: plain http never goes through a proxy")) {
            _ = try await client.perform(HTTPRequest(method: .get, url: "http://127.0.0.1:9/v1/models", bearer: Secret("x")))
        }
        #expect(f.proxy.connects().isEmpty)
    }

    /// The proxy's Basic credentials, read from a 0600 file: the right ones pass,
    /// wrong ones need an operator, and neither appears in any log or message.
    @Test func proxyCredentialsFromTheirFile() async throws {
        let password = "pw-\(UUID().uuidString.prefix(12))"
        let f = try await Fixture(proxyAuth: ("keyrotd", password))
        let file = try f.scratch.write("proxy-credentials", "keyrotd:\(password)\n", mode: 0o600)
        let credentials = try ProxyCredentials.read(path: file)
        #expect(credentials.user == "keyrotd")
        #expect("\(credentials)".contains(password) == false)

        let good = f.provider(HTTPEgress(proxy: f.proxy.url, proxyCredentials: credentials, caFile: f.ca.caFile, caMode: .replace))
        #expect(try await good.listKeys(nameContains: nil).isEmpty)
        #expect(f.proxy.connects() == [f.target])

        let wrong = ProxyCredentials(user: "keyrotd", password: Secret("not-\(password)"))
        let bad = f.provider(HTTPEgress(proxy: f.proxy.url, proxyCredentials: wrong, caFile: f.ca.caFile, caMode: .replace))
        var failure: StepFailure?
        do { _ = try await bad.listKeys(nameContains: nil) } catch { failure = error }
        #expect(failure?.code == "proxy")
        #expect(failure?.kind == .needsOperator)
        #expect(failure?.message.contains(password) == false)
        #expect(try await f.adminCalls() == 1)

        #expect(!f.proxy.log().contains(password))
        let serverLog = (try? String(contentsOfFile: f.scratch.file("requests.jsonl"), encoding: .utf8)) ?? ""
        #expect(!serverLog.contains(password))

        let loose = try f.scratch.write("loose-credentials", "keyrotd:\(password)\n", mode: 0o644)
        #expect(throws: ProxyCredentialsError.self) { try ProxyCredentials.read(path: loose) }
        // Trusted like the admin key file: another owner, or a symbolic link, is refused.
        let foreign = try f.scratch.write("foreign-credentials", "keyrotd:\(password)\n", mode: 0o600)
        #expect(chown(foreign, 65534, 65534) == 0)
        #expect(throws: ProxyCredentialsError.self) { try ProxyCredentials.read(path: foreign) }
        let link = f.scratch.file("linked-credentials")
        #expect(symlink(file, link) == 0)
        #expect(throws: ProxyCredentialsError.self) { try ProxyCredentials.read(path: link) }
        do {
            _ = try ProxyCredentials.read(path: try f.scratch.write("no-colon", "\(password)\n", mode: 0o600))
            Issue.record("a line without user:password was accepted")
        } catch {
            #expect(!"\(error)".contains(password))
        }
    }

    /// Below TLS 1.2 is refused even where the OpenSSL configuration allows it (here
    /// a lax OPENSSL_CONF given to both ends; Debian's default already says 1.2).
    @Test func tlsBelow1_2IsRefused() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let ca = try await TestCA(in: scratch)
        let issued = try await ca.issue()
        let lax = try scratch.write("lax-openssl.cnf", """
            openssl_conf = default_conf
            [default_conf]
            ssl_conf = ssl_sect
            [ssl_sect]
            system_default = system_default_sect
            [system_default_sect]
            MinProtocol = TLSv1
            CipherString = DEFAULT@SECLEVEL=0

            """)
        let port = try freeLoopbackPort()
        let environment = ["PATH": "/usr/bin:/bin", "OPENSSL_CONF": lax]
        let server = try ChildProcess(
            "/usr/bin/openssl",
            ["s_server", "-accept", "127.0.0.1:\(port)", "-tls1_1", "-cert", issued.certificateFile, "-key", issued.keyFile, "-www", "-quiet"],
            environment: environment, output: scratch.file("s_server.out"))
        defer { server.stop() }
        #expect(try await waitFor(seconds: 10) { TinyProxy.accepts(port: port) })
        // The test can fail: curl, under the same lax configuration, does speak TLS 1.1 to it.
        let curlOutput = scratch.file("curl.out")
        let curl = try ChildProcess(
            "/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca.caFile, "https://127.0.0.1:\(port)/"],
            environment: environment, output: curlOutput)
        _ = await curl.wait(timeout: .seconds(10))
        #expect((try? String(contentsOfFile: curlOutput, encoding: .utf8)) == "200")

        let helper = try #require(TestHelper.url, "keyrotd-testhelper not found; build with swift build --build-tests")
        let output = scratch.file("helper.out")
        let child = try ChildProcess(helper.path, ["http-get", "https://127.0.0.1:\(port)/", ca.caFile, "-"], environment: environment, output: output)
        _ = await child.wait(timeout: .seconds(20))
        let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(printed.hasPrefix("error "), "\(printed)")
    }
}

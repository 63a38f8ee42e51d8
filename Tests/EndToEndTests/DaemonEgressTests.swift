import Foundation
import KeyRotation
import TestSupport
import Testing

/// `keyrotd run` with a provider behind a proxy that needs credentials and a
/// private CA, and a different proxy in its environment: the first key is
/// created, verified and deployed through the configured proxy only.
@Suite struct DaemonEgressTests {
    @Test func theDaemonUsesTheConfiguredProxyAndCAAndNeverTheEnvironments() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let ca = try await TestCA(in: scratch)
        let server = try MistralServer(in: scratch, tls: try await ca.issue())
        defer { server.stop() }
        let password = "pw-\(UUID().uuidString.prefix(12))"
        let proxy = try await TinyProxy(in: scratch, name: "configured", basicAuth: ("keyrotd", password))
        defer { proxy.stop() }
        let environmentProxy = try await TinyProxy(in: scratch, name: "environment")
        defer { environmentProxy.stop() }
        let credentials = try scratch.write("proxy-credentials", "keyrotd:\(password)\n", mode: 0o600)
        let hook = try consumerHook(in: scratch)
        let config = try daemonConfig(
            in: scratch, server: server, keys: ["alpha"], hook: hook, rotateEvery: "1h", overlap: "1s",
            providerExtra: """
                proxy = "\(proxy.url)"
                proxy_credentials_file = "\(credentials)"
                ca_file = "\(ca.caFile)"
                ca_mode = "replace"
                """)
        let check = try keyrotd(["check-config", "--config", config])
        #expect(check.status == 0, "\(check.stderr)")
        let environment = ["http_proxy", "https_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"]
            .reduce(into: ["NO_PROXY": "*"]) { $0[$1] = environmentProxy.url }
        let daemon = try DaemonProcess(config: config, logPath: scratch.file("keyrotd.log"), environment: environment)
        let deployed = try await waitFor(seconds: 30) { !deploys(in: scratch).isEmpty }
        daemon.signal(SIGTERM)
        #expect(await daemon.wait(timeout: .seconds(20)) == 0)
        #expect(deployed, "the first key was not deployed:\n\(daemon.log())")

        let target = "127.0.0.1:\(server.port)"
        #expect(!proxy.connects().isEmpty)
        #expect(Set(proxy.connects()) == [target])
        #expect(environmentProxy.connects().isEmpty)
        let adminCalls = try await server.requestLog().filter { ($0["path"] as? String)?.hasPrefix("/v1/") == true }
        #expect(proxy.connects().count == adminCalls.count, "every call to the provider went through the proxy")
        for log in [daemon.log(), proxy.log(), environmentProxy.log()] {
            #expect(!log.contains(password))
            #expect(!log.contains(server.adminKey.withExposedText { $0 }))
        }
    }
}

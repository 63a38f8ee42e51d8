import AsyncHTTPClient
import Foundation
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TestSupport
import Testing

/// Who may connect where: Unix users by SO_PEERCRED on a unix: listener, only root and
/// admin_users on the admin socket, TLS on TCP listeners with the certificate reloaded
/// on SIGHUP.
@Suite(.serialized) struct GatewayListenerTests {
    /// `curl` over the unix listener, as `user` (setpriv), returning the HTTP status.
    func curlStatus(socket: String, asUser user: String?, path: String = "/v1/models") throws -> String {
        let curl = ["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", socket, "http://gateway" + path]
        let command = user.map { ["/usr/bin/setpriv", "--reuid=\($0)", "--regid=nogroup", "--clear-groups", "--"] + curl } ?? curl
        return try runTool(command[0], Array(command.dropFirst()), environment: ["PATH": "/usr/bin:/bin"]).output
    }

    @Test func unixListenerKnowsCallersByTheirUser() async throws {
        let fixture = try GatewayFixture(
            roles: [TestRole(name: "batch", upstreamKey: "dev-team", models: ["mistral-small-latest"])], clients: [])
        fixture.extraClients = """

            [clients.root-jobs]
            role = "batch"
            unix_user = "root"

            [clients.token-client]
            role = "batch"
            token_sha256 = "\(String(repeating: "ab", count: 32))"

            """
        try fixture.rewriteConfig()
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")
        // The scratch directory must be reachable by nobody for the refusal to be about identity.
        _ = chmod(fixture.scratch.path, 0o755)
        #expect(try curlStatus(socket: fixture.unixSocket, asUser: nil) == "200")
        let stranger = try curlStatus(socket: fixture.unixSocket, asUser: "nobody")
        #expect(stranger == "401", "\(stranger)")
        #expect(fixture.log().contains("root-jobs/batch"))
    }

    @Test func onlyRootAndAdminUsersMaySetKeys() async throws {
        let fixture = try GatewayFixture(
            roles: [TestRole(name: "analyst", upstreamKey: "dev-team", models: ["mistral-small-latest"])],
            clients: [("alice", "analyst")])
        try await fixture.start()
        _ = chmod(fixture.scratch.path, 0o755)
        let secretFile = try fixture.scratch.write("planted", "planted-secret-value\n", mode: 0o644)
        let refused = try runTool(
            "/usr/bin/setpriv",
            ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", "/bin/sh", "-c",
             "\(gatewayBinary) set-key dev-team --socket \(fixture.adminSocket) < \(secretFile)"],
            environment: ["PATH": "/usr/bin:/bin"])
        #expect(refused.status == 65, "\(refused.output)")
        #expect(refused.output.contains("admin_users"), "\(refused.output)")
        let answer = try await fixture.request("/v1/chat/completions", client: "alice", json: chat("mistral-small-latest"))
        #expect(answer.status == 503, "a refused set-key must leave no key: \(answer.text)")
    }

    @Test func tlsListenerServesTheCertificateAndReloadsItOnSIGHUP() async throws {
        let fixture = try GatewayFixture(
            roles: [TestRole(name: "analyst", upstreamKey: "dev-team", models: ["mistral-small-latest"])],
            clients: [("alice", "analyst")])
        let firstCA = try await TestCA(in: fixture.scratch, name: "first-ca")
        let first = try await firstCA.issue("127.0.0.1")
        let secondCA = try await TestCA(in: fixture.scratch, name: "second-ca")
        let second = try await secondCA.issue("127.0.0.1")
        let certificate = fixture.scratch.file("gateway.crt")
        let key = fixture.scratch.file("gateway.key")
        try FileManager.default.copyItem(atPath: first.certificateFile, toPath: certificate)
        try FileManager.default.copyItem(atPath: first.keyFile, toPath: key)
        _ = chmod(key, 0o600)
        fixture.extraGateway = "tls_certificate = \"\(certificate)\"\ntls_key = \"\(key)\""
        try fixture.rewriteConfig()
        try await fixture.start()
        try await fixture.deliverNewKey("dev-team")

        func status(trusting caFile: String) async -> Int? {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            let client = HTTPClient(
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: .init(tlsConfiguration: tls))
            defer { _ = client.shutdown() }
            var request = HTTPClientRequest(url: "https://127.0.0.1:\(fixture.port)/v1/models")
            request.headers.add(name: "Authorization", value: "Bearer \(fixture.tokens["alice"] ?? "")")
            guard let response = try? await client.execute(request, timeout: .seconds(10)) else { return nil }
            _ = try? await response.body.collect(upTo: 1 << 20)
            return Int(response.status.code)
        }
        #expect(await status(trusting: first.caFile) == 200)
        #expect(await status(trusting: second.caFile) == nil, "a client trusting another CA must not connect")
        // Plain HTTP on the TLS listener gets nothing useful.
        #expect((try? await fixture.request("/v1/models", method: .GET, client: "alice"))?.status != 200)

        try FileManager.default.removeItem(atPath: certificate)
        try FileManager.default.removeItem(atPath: key)
        try FileManager.default.copyItem(atPath: second.certificateFile, toPath: certificate)
        try FileManager.default.copyItem(atPath: second.keyFile, toPath: key)
        _ = chmod(key, 0o600)
        fixture.process?.signal(SIGHUP)
        #expect(try await waitFor(seconds: 10) { await status(trusting: second.caFile) == 200 })
        #expect(await status(trusting: first.caFile) == nil)
    }
}

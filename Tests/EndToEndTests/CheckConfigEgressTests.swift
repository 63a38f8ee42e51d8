import Foundation
import TestSupport
import Testing

/// `keyrotd check-config` on a provider's egress files: the CA bundle and the
/// proxy credentials are checked on disk, each problem at its place.
@Suite struct CheckConfigEgressTests {
    static func config(in scratch: Scratch, caFile: String, credentials: String) throws -> String {
        try scratch.write("hooks/ok", "#!/bin/sh\n", mode: 0o755)
        try scratch.write("admin-key", "secret\n", mode: 0o600)
        return try scratch.write("keyrotd.toml", """
            [providers.mistral]
            type = "mistral"
            base_url = "https://api.mistral.ai"
            admin_key_file = "\(scratch.file("admin-key"))"
            proxy = "https://proxy.corp.example:8443"
            proxy_credentials_file = "\(credentials)"
            ca_file = "\(caFile)"

            [keys.alpha]
            provider = "mistral"
            workspace = "7f1e0c3a-5d1b-4c52-9a3e-2b7d8e6f4a10"
            user = "b52d9e10-3c4f-4e8a-8b1d-6a9f0c2e7d35"
            hooks = ["\(scratch.file("hooks/ok"))"]
            """)
    }

    @Test func aRealBundleAndPrivateCredentialsPass() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let ca = try await TestCA(in: scratch)
        let credentials = try scratch.write("proxy-credentials", "keyrotd:pw\n", mode: 0o600)
        let config = try Self.config(in: scratch, caFile: ca.caFile, credentials: credentials)
        let result = try keyrotd(["check-config", "--config", config])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stderr.contains("pw"))
    }

    @Test func aBundleWithoutCertificatesAndLooseCredentialsAreRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let notPEM = try scratch.write("corp-ca.der", "\u{30}\u{82}binary", mode: 0o644)
        let credentials = try scratch.write("proxy-credentials", "keyrotd:pw\n", mode: 0o644)
        let config = try Self.config(in: scratch, caFile: notPEM, credentials: credentials)
        let result = try keyrotd(["check-config", "--config", config])
        #expect(result.status == 78)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.contains("\(config):7: providers.mistral.ca_file: \(notPEM) holds no PEM certificate (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)"), "\(result.stderr)")
        #expect(lines.contains("\(config):6: providers.mistral.proxy_credentials_file: \(credentials) is accessible by group or others (mode 0644); chmod 600 it"), "\(result.stderr)")
        #expect(!result.stderr.contains("keyrotd:pw"))

        let missing = try Self.config(in: scratch, caFile: scratch.file("absent.pem"), credentials: scratch.file("absent"))
        let second = try keyrotd(["check-config", "--config", missing])
        #expect(second.status == 78)
        #expect(second.stderr.contains("\(missing):7: providers.mistral.ca_file: \(scratch.file("absent.pem")) does not exist"), "\(second.stderr)")
    }
}

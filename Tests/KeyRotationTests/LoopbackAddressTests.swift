import Testing
@testable import KeyRotation

/// Which hosts plain http may reach: only spellings `inet_pton` reads as loopback
/// (AdapterTests.LoopbackInetPtonTests checks the parser against the real one).
@Suite struct LoopbackAddressTests {
    static let loopbackHosts = [
        "127.0.0.1", "127.255.255.255", "127.0.0.0", "127.1.2.3", "127.10.100.200",
        "localhost", "LOCALHOST", "::1", "[::1]",
    ]

    /// Each of these is read by libcurl as a host name (so resolved) or as an
    /// address that is not loopback.
    static let refusedHosts = [
        "127.0.0.08", "127.0.0.010", "0127.0.0.1", "127.1", "127.0.1", "127", "0x7f.0.0.1", "0x7f000001",
        "2130706433", "017700000001", "127.0.0.1.", "127.0.0.256", "127.0.0.1000", "127..0.1", ".127.0.0.1",
        "127.0.0.-1", "127.0.0.+1", "127.0.0. 1", " 127.0.0.1", "127.0.0.1 ", "１２７.0.0.1", "127.0.0.1%lo",
        "localhost.", "localhost.localdomain", "foo.localhost", "128.0.0.1", "10.0.0.1", "0.0.0.0",
        "0:0:0:0:0:0:0:1", "::0:1", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]", "::", "[::1", "::1]", "",
    ]

    @Test(arguments: loopbackHosts) func isLoopback(host: String) {
        #expect(LoopbackAddress.contains(host))
    }

    @Test(arguments: refusedHosts) func isNotLoopback(host: String) {
        #expect(!LoopbackAddress.contains(host))
    }

    @Test(arguments: ["http://127.0.0.08:8080", "http://127.1:8080", "http://0x7f.0.0.1", "http://127.0.0.1.:8080", "http://localhost.:9"])
    func theConfigurationRefusesLooseLoopbackSpellings(url: String) {
        let parsed = ConfigParser.parse(mutated("https://api.mistral.ai", url))
        #expect(parsed.problems.map(\.path) == ["providers.mistral.base_url"])
        #expect(parsed.problems.first?.message.contains("loopback") == true)
    }
}

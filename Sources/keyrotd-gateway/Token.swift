import ArgumentParser
import Crypto
import GatewayCore
import KeyRotation

struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a new random token for a client, once, and the configuration line holding its hash.",
        discussion: """
            The token (32 random bytes from the system's generator) goes to the client; the \
            configuration keeps only its SHA-256. Nothing is stored: paste the line into the \
            client's [clients.NAME] table and reload the gateway.
            """)

    @Argument(help: ArgumentHelp("The client's name (its [clients.NAME] table).", valueName: "client"))
    var client: String

    func validate() throws {
        guard ManagedKey.isValidName(client) else {
            throw ValidationError("\"\(TerminalText.escaped(client))\" is not a valid client name (letters, digits, . _ -)")
        }
    }

    func run() throws {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let token = "krg_" + hex(bytes)
        let digest = hex(Array(SHA256.hash(data: Array(token.utf8))))
        print("token for \(client) (shown once; give it to the client, it is not stored anywhere):")
        print(token)
        print("")
        print("configuration (/etc/keyrotd/gateway.toml):")
        print("[clients.\(client)]")
        print("role = \"...\"")
        print("token_sha256 = \"\(digest)\"")
    }

    private func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] })
    }
}

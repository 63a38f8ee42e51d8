import ArgumentParser
import Foundation
import GatewayServer
import KeyRotation
import KeyRotationAdapters

struct SetKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-key",
        abstract: "Hand a new upstream secret (one line on stdin) to the running gateway.",
        discussion: """
            Exits 0 once the gateway uses the key for new requests and has stored it durably; \
            69 when the gateway cannot be reached, 65 when it refused. The key id and \
            generation come from KEYROTD_KEY_ID and KEYROTD_GENERATION (keyrotd's hook \
            environment) unless given. The secret is read from stdin only, never from arguments.
            """)

    @Argument(help: ArgumentHelp("The keyrotd key the secret belongs to (a role's upstream_key).", valueName: "key"))
    var key: String

    @Option(help: ArgumentHelp("The gateway's admin socket.", valueName: "path"))
    var socket: String = "/run/keyrotd-gateway/admin.sock"

    @Option(name: .customLong("key-id"), help: ArgumentHelp("The provider's key id (default $KEYROTD_KEY_ID).", valueName: "id"))
    var keyID: String?

    @Option(help: ArgumentHelp("keyrotd's generation of the key (default $KEYROTD_GENERATION).", valueName: "n"))
    var generation: Int?

    func validate() throws {
        guard ManagedKey.isValidName(key) else {
            throw ValidationError("\"\(TerminalText.escaped(key))\" is not a keyrotd key name")
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        // One byte past the limit tells a too-long secret from one that fits.
        var input = Array(FileHandle.standardInput.readData(ofLength: (16 << 10) + 1))
        while let last = input.last, last == 0x0A || last == 0x0D { input.removeLast() }
        guard !input.isEmpty, input.count <= 16 << 10, let text = String(validating: input, as: UTF8.self),
            !text.contains(where: { $0.isWhitespace || $0.isNewline })
        else {
            StandardError.write("keyrotd-gateway set-key: expected one line holding the secret on stdin\n")
            throw ExitCode(65)
        }
        let keyID = self.keyID ?? environment["KEYROTD_KEY_ID"].flatMap { $0.isEmpty ? nil : $0 }
        let generation = self.generation ?? environment["KEYROTD_GENERATION"].flatMap { Int($0) }
        do throws(AdminClient.Failure) {
            try await AdminClient(socketPath: socket).setKey(
                name: key, secret: Secret(text), keyID: keyID, generation: generation)
        } catch {
            StandardError.write("keyrotd-gateway set-key: \(TerminalText.escaped(error.description))\n")
            throw ExitCode(error.exitCode)
        }
        print("keyrotd-gateway: \(key) now uses \(keyID ?? "the new key")\(generation.map { " (generation \($0))" } ?? "")")
    }
}

import Foundation
import Testing
@testable import KeyRotation

/// A key pasted by mistake into a setting that names where the key is must not
/// be printed back in the error (terminal, journal, CI logs).
@Suite struct CredentialSettingEchoTests {
    static let pastedKey = "sk-Zq8pasted4f2e9c1b7a6d5e4f3a2b1c0d"

    static func errors(_ text: String) -> [String] {
        ConfigParser.parse(text).problems.map { $0.formatted(file: "keyrotd.toml") }
    }

    @Test func aKeyPastedIntoAdminKeyFileIsNotEchoed() throws {
        let lines = Self.errors(mutated(
            "admin_key_credential = \"mistral-admin-key\"", "admin_key_file = \"\(Self.pastedKey)\""))
        let line = try #require(lines.first { $0.contains("providers.mistral.admin_key_file") }, "\(lines)")
        #expect(line.contains("must be an absolute path"), "\(line)")
        #expect(lines.allSatisfy { !$0.contains(Self.pastedKey) && !$0.contains("Zq8pasted") }, "\(lines)")
    }

    @Test func aKeyWithASlashPastedIntoAdminKeyCredentialIsNotEchoed() throws {
        let key = "sk-Zq8/pasted4f2e9c1b7a6d5e4f3a2b1c0d"
        let lines = Self.errors(mutated(
            "admin_key_credential = \"mistral-admin-key\"", "admin_key_credential = \"\(key)\""))
        let line = try #require(lines.first { $0.contains("providers.mistral.admin_key_credential") }, "\(lines)")
        #expect(line.contains("must be a credential name"), "\(line)")
        #expect(lines.allSatisfy { !$0.contains("Zq8") && !$0.contains("pasted4f2e") }, "\(lines)")
    }
}

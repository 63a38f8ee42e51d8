import Foundation
import Glibc
import TestSupport
import Testing

/// Whoever can write the configuration can point `base_url` at themselves and
/// receive the admin key; whoever controls the admin-key file chooses (and can
/// read) the key. `check-config` and `run` refuse both, with exit 78 and the
/// offending component, its owner and mode. Real files; the tests run as root,
/// so another owner is nobody (65534) via chown.
@Suite struct ConfigFileTrustTests {
    static let nobody: uid_t = 65534

    /// check-config and run both refuse with 78 and a message containing `expected`.
    static func expectRefused(_ config: String, _ expected: String, environment: [String: String]) throws {
        let checked = try keyrotd(["check-config", "--config", config], environment: environment)
        #expect(checked.status == 78, "\(checked.stderr)")
        #expect(checked.stderr.contains(expected), "check-config: \(checked.stderr)")
        let run = try keyrotd(["run", "--config", config], environment: environment)
        #expect(run.status == 78, "\(run.stderr)")
        #expect(run.stderr.contains(expected), "run: \(run.stderr)")
    }

    @Test func aConfigurationFileOthersMayWriteIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, environment) = try CheckConfigTests.example(in: scratch)
        #expect(chmod(config, 0o664) == 0)
        try Self.expectRefused(
            config,
            "\(config): configuration file \(config) is writable by group or others (owner root (uid 0), mode 0664): whoever can change it can point base_url at themselves and receive the admin key",
            environment: environment)
    }

    @Test func aConfigurationFileSomeoneElseOwnsIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, environment) = try CheckConfigTests.example(in: scratch)
        #expect(chown(config, Self.nobody, Self.nobody) == 0)
        try Self.expectRefused(
            config, "configuration file \(config) is owned by nobody (uid 65534), neither root nor keyrotd's user",
            environment: environment)
    }

    @Test func aDirectoryAboveTheConfigurationOthersMayWriteIsNamed() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (example, environment) = try CheckConfigTests.example(in: scratch)
        let config = try scratch.write("etc/keyrotd/keyrotd.toml", try String(contentsOfFile: example, encoding: .utf8))
        #expect(try keyrotd(["check-config", "--config", config], environment: environment).status == 0)
        #expect(chmod(scratch.file("etc"), 0o777) == 0)
        try Self.expectRefused(
            config, "configuration file \(config): \(scratch.file("etc")) is writable by group or others (owner root (uid 0), mode 0777)",
            environment: environment)
    }

    @Test func aSymlinkedConfigurationIsJudgedByTheLinkAndItsTarget() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, environment) = try CheckConfigTests.example(in: scratch)
        let link = scratch.file("linked.toml")
        #expect(symlink(config, link) == 0)
        #expect(try keyrotd(["check-config", "--config", link], environment: environment).status == 0)
        #expect(lchown(link, Self.nobody, Self.nobody) == 0)
        try Self.expectRefused(link, "\(link) is owned by nobody (uid 65534)", environment: environment)
    }

    // MARK: admin_key_file

    /// The example with `admin_key_file` pointing at `scratch/keys/admin-key` (0600).
    static func withAdminKeyFile(in scratch: Scratch) throws -> (config: String, key: String) {
        let (example, _) = try CheckConfigTests.example(in: scratch)
        let key = try scratch.write("keys/admin-key", "admin-key-for-tests\n", mode: 0o600)
        let text = try String(contentsOfFile: example, encoding: .utf8).replacingOccurrences(
            of: "admin_key_credential = \"mistral-admin-key\"", with: "admin_key_file = \"\(key)\"")
        return (try scratch.write("file.toml", text), key)
    }

    @Test func anAdminKeyFileSomeoneElseOwnsIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, key) = try Self.withAdminKeyFile(in: scratch)
        #expect(try keyrotd(["check-config", "--config", config]).status == 0)
        #expect(chown(key, Self.nobody, Self.nobody) == 0)
        try Self.expectRefused(
            config,
            "providers.mistral.admin_key_file: admin key file \(key) is owned by nobody (uid 65534), neither root nor keyrotd's user",
            environment: [:])
    }

    @Test func anAdminKeyFileInADirectoryOthersMayWriteIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, key) = try Self.withAdminKeyFile(in: scratch)
        #expect(chmod(scratch.file("keys"), 0o775) == 0)
        try Self.expectRefused(
            config, "admin key file \(key): \(scratch.file("keys")) is writable by group or others", environment: [:])
    }

    /// It is read with O_NOFOLLOW: a symbolic link, even to a good file, is refused.
    @Test func aSymlinkedAdminKeyFileIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (config, key) = try Self.withAdminKeyFile(in: scratch)
        #expect(rename(key, scratch.file("keys/real")) == 0)
        #expect(symlink(scratch.file("keys/real"), key) == 0)
        try Self.expectRefused(
            config, "admin key file \(key) is a symbolic link; name the file itself", environment: [:])
    }
}

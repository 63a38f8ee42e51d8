import Foundation
import Glibc
import Testing
@testable import KeyRotation
@testable import KeyRotationAdapters

/// Who can hand a hook — and so every new secret — to someone else: the whole
/// path from / down, symbolic links included, is checked at check-config and
/// again at every spawn. Real files and directories, chown'ed to nobody (65534)
/// where another owner is needed (the tests run as root).
@Suite struct HookTrustTests {
    static let nobody: uid_t = 65534

    /// The message check-config gives for a hook, or nil when it is accepted.
    static func refusal(_ path: String) -> String? {
        do throws(HookTrust.Problem) {
            _ = try HookTrust.verify(path)
            return nil
        } catch {
            return error.message(path: path)
        }
    }

    static func hook(_ path: String) throws {
        try writeRaw(Array("#!/bin/sh\nexit 0\n".utf8), to: path, mode: 0o755)
    }

    @Test func aGoodHookInAPrivateScratchDirectoryIsAccepted() throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("ok", "exit 0")
        #expect(Self.refusal(hook) == nil)
    }

    @Test func aDirectoryOthersMayWriteAnywhereAboveTheHookIsNamed() throws {
        let fixture = try HookFixture()
        let open = fixture.file("open")
        let hooks = open + "/hooks"
        #expect(mkdir(open, 0o755) == 0 && mkdir(hooks, 0o755) == 0)
        try Self.hook(hooks + "/deploy")
        #expect(Self.refusal(hooks + "/deploy") == nil)
        #expect(chmod(open, 0o777) == 0)
        let message = try #require(Self.refusal(hooks + "/deploy"))
        #expect(message.hasPrefix("hook \(hooks)/deploy: \(open) is writable by group or others (owner root (uid 0), mode 0777)"), "\(message)")
        #expect(message.contains("chmod go-w \(open)"), "\(message)")
    }

    @Test func aDirectoryAboveOwnedBySomeoneElseIsNamedWithItsOwner() throws {
        let fixture = try HookFixture()
        let theirs = fixture.file("theirs")
        #expect(mkdir(theirs, 0o755) == 0)
        try Self.hook(theirs + "/deploy")
        #expect(chown(theirs, Self.nobody, Self.nobody) == 0)
        let message = try #require(Self.refusal(theirs + "/deploy"))
        #expect(message.contains("\(theirs) is owned by nobody (uid 65534), neither root nor keyrotd's user"), "\(message)")
    }

    @Test func aSymlinkIntoAGroupWritableDirectoryIsJudgedByItsTarget() throws {
        let fixture = try HookFixture()
        let shared = fixture.file("shared")
        #expect(mkdir(shared, 0o775) == 0 && chmod(shared, 0o775) == 0)
        try Self.hook(shared + "/real")
        let link = fixture.file("linked")
        #expect(symlink(shared + "/real", link) == 0)
        let message = try #require(Self.refusal(link))
        #expect(message.hasPrefix("hook \(link): \(shared) is writable by group or others"), "\(message)")
    }

    @Test func aRelativeSymlinkIsResolvedFromItsOwnDirectory() throws {
        let fixture = try HookFixture()
        #expect(mkdir(fixture.file("a"), 0o755) == 0 && mkdir(fixture.file("b"), 0o755) == 0)
        try Self.hook(fixture.file("b/real"))
        #expect(symlink("../b/real", fixture.file("a/link")) == 0)
        #expect(Self.refusal(fixture.file("a/link")) == nil)
        #expect(try HookTrust.verify(fixture.file("a/link")) == fixture.file("b/real"))
        #expect(chmod(fixture.file("b"), 0o777) == 0)
        #expect(Self.refusal(fixture.file("a/link"))?.contains("\(fixture.file("b")) is writable") == true)
    }

    @Test func aSymlinkOwnedBySomeoneElseIsRefusedEvenToAGoodTarget() throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("real", "exit 0")
        let link = fixture.file("linked")
        #expect(symlink(hook, link) == 0)
        #expect(Self.refusal(link) == nil)
        #expect(lchown(link, Self.nobody, Self.nobody) == 0)
        let message = try #require(Self.refusal(link))
        #expect(message.contains("\(link) is owned by nobody (uid 65534)"), "\(message)")
    }

    @Test func aSymlinkInADirectoryOthersMayWriteIsRefused() throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("real", "exit 0")
        let open = fixture.file("open")
        #expect(mkdir(open, 0o777) == 0 && chmod(open, 0o777) == 0)
        #expect(symlink(hook, open + "/link") == 0)
        let message = try #require(Self.refusal(open + "/link"))
        #expect(message.contains("\(open) is writable by group or others"), "\(message)")
    }

    /// A sticky world-writable directory (like /tmp) is fine for entries owned by
    /// root or keyrotd's user: others cannot rename or remove them. An entry there
    /// owned by someone else is not.
    @Test func aStickyDirectoryIsTrustedOnlyForEntriesOwnedByRootOrKeyrotd() throws {
        let fixture = try HookFixture()
        let sticky = fixture.file("sticky")
        #expect(mkdir(sticky, 0o755) == 0 && chmod(sticky, 0o1777) == 0)
        try Self.hook(sticky + "/ours")
        #expect(Self.refusal(sticky + "/ours") == nil)
        #expect(mkdir(sticky + "/theirs", 0o755) == 0)
        try Self.hook(sticky + "/theirs/deploy")
        #expect(chown(sticky + "/theirs", Self.nobody, Self.nobody) == 0)
        let message = try #require(Self.refusal(sticky + "/theirs/deploy"))
        #expect(message.contains("\(sticky)/theirs is owned by nobody"), "\(message)")
    }

    @Test func aWritableHookFileIsRefused() throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("loose", "exit 0")
        #expect(chmod(hook, 0o757) == 0)
        let message = try #require(Self.refusal(hook))
        #expect(message.hasPrefix("hook \(hook) is writable by group or others (owner root (uid 0), mode 0757)"), "\(message)")
    }

    @Test func aSymlinkLoopEndsWithAMessage() throws {
        let fixture = try HookFixture()
        #expect(symlink(fixture.file("b"), fixture.file("a")) == 0)
        #expect(symlink(fixture.file("a"), fixture.file("b")) == 0)
        #expect(Self.refusal(fixture.file("a"))?.contains("too many levels of symbolic links") == true)
    }

    // MARK: Re-check at spawn

    /// A hook that was fine when the configuration was loaded, then made writable
    /// by others (here its directory, as an attacker's foothold would be) is not
    /// run: a hook_untrusted failure, retried like any hook failure, and the
    /// secret never reaches it.
    @Test func aHookWhoseDirectoryBecameWritableIsNotRunAtTheNextSpawn() async throws {
        let fixture = try HookFixture()
        let hooks = fixture.file("hooks")
        #expect(mkdir(hooks, 0o755) == 0)
        let hook = hooks + "/deploy"
        let text = "#!/bin/sh\ncat > '\(fixture.file("received"))'\n"
        try writeRaw(Array(text.utf8), to: hook, mode: 0o755)
        let runner = fixture.runner()
        #expect(await runner.run(deploy(hook), provider: "mistral", timeout: .seconds(10)) == .succeeded)
        #expect(unlink(fixture.file("received")) == 0)

        #expect(chmod(hooks, 0o775) == 0)
        let outcome = await runner.run(deploy(hook), provider: "mistral", timeout: .seconds(10))
        let failure = try #require(outcome.failure)
        #expect(failure.code == "hook_untrusted")
        #expect(failure.kind == .transient)
        #expect(failure.message.contains("\(hooks) is writable by group or others"), "\(failure.message)")
        #expect(failure.message.hasSuffix("; not run"), "\(failure.message)")
        #expect(access(fixture.file("received"), F_OK) != 0, "the hook ran and was handed the secret")
    }

    @Test func aHookSwappedForOneSomeoneElseOwnsIsNotRunAtTheNextSpawn() async throws {
        let fixture = try HookFixture()
        let hook = fixture.file("deploy")
        let text = "#!/bin/sh\ncat > '\(fixture.file("received"))'\n"
        try writeRaw(Array(text.utf8), to: hook, mode: 0o755)
        #expect(Self.refusal(hook) == nil)
        #expect(chown(hook, Self.nobody, Self.nobody) == 0)
        let outcome = await fixture.runner().run(deploy(hook), provider: "mistral", timeout: .seconds(10))
        #expect(outcome.failure?.code == "hook_untrusted")
        #expect(access(fixture.file("received"), F_OK) != 0, "the hook ran and was handed the secret")
    }

    /// The verified real path is what runs; argv[0] stays the configured path.
    @Test func aSymlinkedHookRunsItsVerifiedTarget() async throws {
        let fixture = try HookFixture()
        let hook = try fixture.script("real", #"printf '%s\n' "$0" > "$DIR/argv0""#)
        let link = fixture.file("linked")
        #expect(symlink(hook, link) == 0)
        #expect(await fixture.runner().run(retire(link), provider: "mistral", timeout: .seconds(10)) == .succeeded)
        #expect(try fixture.text("argv0") == hook + "\n")
    }
}

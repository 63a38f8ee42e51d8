import Foundation
import KeyRotation
import TestSupport
import Testing
@testable import KeyRotationAdapters

/// A real state file, damaged every way `StateDamage` knows (truncated at every
/// offset, single bytes flipped, runs of bytes garbled), is refused by
/// `StateFile.load` or `StateDocument.decode` — never taken for a state — and the
/// refused file keeps its bytes, mode, inode and modification time. The binary's
/// side is `EndToEndTests.StateCorruptionProcessTests`.
@Suite struct StateCorruptionTests {
    @Test func theFixtureLoadsIntact() throws {
        let directory = try TemporaryDirectory()
        let state = try Self.writeFixture(in: directory)
        #expect(try Self.load(state) == nil)
    }

    /// An empty file is not "no state yet": keyrotd never writes one (a save
    /// renames a complete file into place), so it means something else truncated
    /// the state, and starting afresh would orphan every key at the provider.
    @Test func anEmptyFileIsRefusedNotTakenForNoState() throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("state.json"))
        try writeRaw([], to: state.path)
        let refusal = try #require(try Self.load(state))
        #expect(refusal.contains("it is empty"), "\(refusal)")
    }

    /// The daemon and the CLI skip `load`'s own JSON check and let the decoder judge
    /// the body (one parse instead of two): a body whose checksum is right but which
    /// is no state document is still refused, naming the file, and left as it was.
    @Test(arguments: ["[1]", "\"x\"", "{\"keys\":5}", "{\"keys\":{}} x", "{\"keys\":{}", "{}", "{\"keys\":{\"a\":{}}}", "{\"keys\":{}}\u{0}"])
    func aChecksumValidBodyThatIsNoStateIsRefused(body: String) throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("state.json"))
        try writeRaw(StateFileFormat.encode(body: Array(body.utf8), version: StateDocument.schemaVersion), to: state.path)
        let before = try FileSnapshot(state.path)
        let refusal = try #require(try Self.load(state), "\(body) was taken for a state")
        #expect(refusal.contains(state.path), "\(refusal)")
        #expect(try FileSnapshot(state.path) == before)
    }

    /// Async and yielding after every case (see ConfigFuzzTests).
    @Test func everyDamageIsRefusedAndTheFileLeftAsItWas() async throws {
        let directory = try TemporaryDirectory()
        let state = try Self.writeFixture(in: directory)
        let original = try readBytes(state.path)
        let headerSize = (original.firstIndex(of: 0x0A) ?? 0) + 1
        let damages = StateDamage.all(size: original.count, headerSize: headerSize, flips: 600, garbles: 40, seed: Fuzzing.seed)
        print("state corruption: \(damages.count) damages of a \(original.count)-byte file, seed \(Fuzzing.seedText)")
        var failures = 0
        for damage in damages where failures < 10 {
            await Task.yield()
            let bytes = damage.apply(to: original)
            guard bytes != original else { continue }
            try writeRaw(bytes, to: state.path)
            let before = try FileSnapshot(state.path)
            let refusal = try Self.load(state)
            let after = try FileSnapshot(state.path)
            let leftovers = try temporaryFiles(in: directory.path, of: "state.json")
            if refusal == nil || after != before || !leftovers.isEmpty {
                failures += 1
                Issue.record("""
                    seed \(Fuzzing.seedText), \(damage): \
                    \(refusal == nil ? "loaded as a state" : "refused") \
                    \(after != before ? "and the file changed" : "")\(leftovers.isEmpty ? "" : " leaving \(leftovers)")
                    """)
            }
            if let refusal, !refusal.contains(state.path) {
                failures += 1
                Issue.record("seed \(Fuzzing.seedText), \(damage): the refusal does not name the file: \(refusal)")
            }
        }
    }

    static func writeFixture(in directory: TemporaryDirectory) throws -> StateFile {
        let state = StateFile(path: directory.file("state.json"))
        try state.save(body: try StateFixture.document().encoded(), version: StateDocument.schemaVersion)
        return state
    }

    /// nil when the file loads and decodes as a state document, else why not,
    /// worded as the CLI words it.
    static func load(_ state: StateFile) throws -> String? {
        let loaded: (version: Int, body: [UInt8])?
        do {
            loaded = try state.load(maxSupportedVersion: StateDocument.schemaVersion, checkingJSON: false)
        } catch {
            #expect(error.path == state.path)
            return error.description
        }
        let (version, body) = try #require(loaded, "the file is there")
        do {
            _ = try StateDocument.decode(body, version: version)
            return nil
        } catch {
            return "state file \(state.path) has a valid checksum but does not decode (\(error))"
        }
    }
}

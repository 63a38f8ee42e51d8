import Foundation
import Glibc
import SystemPackage
import Testing
@testable import KeyRotationAdapters

private let sampleBody = Array(#"{"keys":[{"id":"alpha","rotatedAt":"2025-01-01T00:00:00Z"}],"note":"hello"}"#.utf8)

private func largeBody(_ size: Int) -> [UInt8] {
    Array(#"{"padding":"\#(String(repeating: "p", count: size))"}"#.utf8)
}

@Suite struct StateFileFormatTests {
    @Test func crc32MatchesTheZlibCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
        #expect(CRC32.hex(0xCBF4_3926) == "cbf43926")
        #expect(CRC32.hex(0x0000_00AB) == "000000ab")
    }

    @Test func headerIsParsedOnlyInItsCanonicalSpelling() {
        let canonical = #"{"format":"keyrotd-state","version":1,"crc32":"cbf43926","length":9,"state":"#
        #expect(StateFileFormat.parseHeader(ArraySlice(canonical.utf8))
            == .init(version: 1, crc32: 0xCBF4_3926, length: 9))
        let variants = [
            #"{"format":"keyrotd-state","version":01,"crc32":"cbf43926","length":9,"state":"#,
            #"{"format":"keyrotd-state","version":-1,"crc32":"cbf43926","length":9,"state":"#,
            #"{"format": "keyrotd-state","version":1,"crc32":"cbf43926","length":9,"state":"#,
            #"{"format":"keyrotd-state","version":1,"crc32":"CBF43926","length":9,"state":"#,
            #"{"format":"keyrotd-state","version":1,"crc32":"cbf4392","length":9,"state":"#,
            #"{"format":"keyrotd-state","version":1,"crc32":"cbf43926","length":9,"state": "#,
            #"{"format":"other-state","version":1,"crc32":"cbf43926","length":9,"state":"#,
            #"{"version":1,"format":"keyrotd-state","crc32":"cbf43926","length":9,"state":"#,
            #"{"format":"keyrotd-state","version":1,"crc32":"cbf43926","length":1234567890123456789,"state":"#,
        ]
        for variant in variants {
            #expect(StateFileFormat.parseHeader(ArraySlice(variant.utf8)) == nil, "\(variant)")
        }
    }
}

@Suite struct StateFileTests {
    @Test func roundTripReturnsTheSavedBytesAndVersion() throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("state/state.json"))
        #expect(try state.load(maxSupportedVersion: 1) == nil, "no directory yet")
        try state.prepareDirectory()
        #expect(try state.load(maxSupportedVersion: 1) == nil, "no file yet")

        try state.save(body: sampleBody, version: 1)
        let loaded = try #require(try state.load(maxSupportedVersion: 1))
        #expect(loaded.version == 1)
        #expect(loaded.body == sampleBody)

        let second = largeBody(100_000)
        try state.save(body: second, version: 3)
        let reloaded = try #require(try state.load(maxSupportedVersion: 3))
        #expect(reloaded.version == 3)
        #expect(reloaded.body == second)
        #expect(try temporaryFiles(in: directory.file("state"), of: "state.json").isEmpty)
    }

    @Test func fileIsOneJSONDocumentWithTheDocumentedHeader() throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("state.json"))
        try state.save(body: sampleBody, version: 7)

        let bytes = try readBytes(state.path)
        let header = #"{"format":"keyrotd-state","version":7,"crc32":"\#(CRC32.hex(CRC32.checksum(sampleBody)))","length":\#(sampleBody.count),"state":"#
        #expect(bytes == Array(header.utf8) + [0x0A] + sampleBody + Array("\n}\n".utf8))

        let document = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(document["format"] as? String == "keyrotd-state")
        #expect(document["version"] as? Int == 7)
        #expect(document["length"] as? Int == sampleBody.count)
        #expect(document["crc32"] as? String == CRC32.hex(CRC32.checksum(sampleBody)))
        let embedded = try #require(document["state"] as? [String: Any])
        #expect(embedded["note"] as? String == "hello")
    }

    @Test func saveRefusesABodyThatIsNotAJSONObject() throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("state.json"))
        try state.save(body: sampleBody, version: 1)
        let before = try FileSnapshot(state.path)
        for body in ["[1,2]", "not json", "", "\"text\"", "{\"a\":1} trailing"].map({ Array($0.utf8) }) {
            let error = #expect(throws: StateFileError.self) { try state.save(body: body, version: 1) }
            #expect(error?.code == .invalidArgument)
        }
        let error = #expect(throws: StateFileError.self) { try state.save(body: sampleBody, version: -1) }
        #expect(error?.code == .invalidArgument)
        #expect(try FileSnapshot(state.path) == before)
        #expect(try temporaryFiles(in: directory.path, of: "state.json").isEmpty)
    }

    @Test func writerKilledAtRandomMomentsAlwaysLeavesALoadableFile() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("state/state.json")
        let state = StateFile(path: path)
        let kills = 200
        let clock = ContinuousClock()
        let started = clock.now
        var loadedVersions = 0
        var killsMidSave = 0
        for round in 0..<kills {
            let writer = try TestHelper.Running(["write-loop", path])
            let ready = writer.waitFor(line: "ready")
            try #require(ready, "writer did not start in round \(round): \(writer.standardErrorSoFar)")
            usleep(UInt32.random(in: 0...30_000))
            writer.kill()

            let loaded = try #require(try state.load(maxSupportedVersion: 1), "round \(round)")
            #expect(loaded.body.starts(with: Array(#"{"counter":"#.utf8)))
            loadedVersions += 1
            let leftovers = try temporaryFiles(in: directory.file("state"), of: "state.json")
            try #require(leftovers.count <= 1, "temporaries accumulate: \(leftovers)")
            killsMidSave += leftovers.count
        }
        let lock = try state.lock()
        _ = try state.removeLeftoverTemporaries(holding: lock)
        #expect(try temporaryFiles(in: directory.file("state"), of: "state.json").isEmpty)
        #expect(loadedVersions == kills)
        // A test whose kills never land inside a save would prove nothing; here 11-19% do.
        #expect(killsMidSave >= 5, "only \(killsMidSave) of \(kills) kills landed while a temporary file existed")
        print("state file kill test: \(kills) SIGKILLs, \(killsMidSave) of them mid-save, in \(clock.now - started)")
    }

    @Test func groupOrWorldAccessibleFileIsRefusedAndLeftUntouched() throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("state.json"))
        try state.save(body: sampleBody, version: 1)
        for mode: mode_t in [0o640, 0o620, 0o604, 0o602, 0o644, 0o666] {
            #expect(chmod(state.path, mode) == 0)
            let before = try FileSnapshot(state.path)
            let error = #expect(throws: StateFileError.self) { try state.load(maxSupportedVersion: 1) }
            #expect(error?.code == .unsafePermissions, "mode \(String(mode, radix: 8))")
            #expect(error?.description.contains(state.path) == true)
            #expect(try FileSnapshot(state.path) == before)
        }
        #expect(chmod(state.path, 0o400) == 0)
        #expect(try state.load(maxSupportedVersion: 1)?.body == sampleBody, "owner-only modes are fine")
    }

    @Test(arguments: Damage.all)
    func damagedFileIsRefusedWithItsCodeAndLeftUntouched(_ damage: Damage) throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("state.json"))
        try state.save(body: sampleBody, version: 1)
        try writeRaw(damage.apply(try readBytes(state.path)), to: state.path)
        let before = try FileSnapshot(state.path)

        let error = #expect(throws: StateFileError.self) { try state.load(maxSupportedVersion: 1) }
        #expect(error?.code == damage.expected)
        #expect(error?.path == state.path)
        #expect(error?.description.contains(state.path) == true)
        #expect(error?.description.contains("left untouched") == true)
        #expect(try FileSnapshot(state.path) == before)
    }

    @Test func symbolicLinkIsRefusedAndNeitherLinkNorTargetIsTouched() throws {
        let directory = try TemporaryDirectory()
        let real = StateFile(path: directory.file("real.json"))
        try real.save(body: sampleBody, version: 1)
        let linked = StateFile(path: directory.file("state.json"))
        #expect(symlink(real.path, linked.path) == 0)
        let linkBefore = try FileSnapshot(linked.path)
        let targetBefore = try FileSnapshot(real.path)

        let error = #expect(throws: StateFileError.self) { try linked.load(maxSupportedVersion: 1) }
        #expect(error?.code == .notRegularFile)
        #expect(error?.description.contains("symbolic link") == true)
        #expect(try FileSnapshot(linked.path) == linkBefore)
        #expect(try FileSnapshot(real.path) == targetBefore)
    }

    @Test func directoryOrFIFOAtThePathIsRefused() throws {
        let directory = try TemporaryDirectory()
        let asDirectory = StateFile(path: directory.file("dir.json"))
        #expect(mkdir(asDirectory.path, 0o700) == 0)
        let fifo = StateFile(path: directory.file("fifo.json"))
        #expect(mkfifo(fifo.path, 0o600) == 0)
        for state in [asDirectory, fifo] {
            let error = #expect(throws: StateFileError.self) { try state.load(maxSupportedVersion: 1) }
            #expect(error?.code == .notRegularFile, "\(state.path)")
        }
    }

    @Test func loadHelperExits78OnACorruptFileAnd0OnAGoodOne() throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("state.json"))
        try state.save(body: sampleBody, version: 1)

        let good = try TestHelper.run("load", state.path)
        #expect(good.status == 0)
        #expect(good.standardOutput == "version 1 length \(sampleBody.count)\n")

        var bytes = try readBytes(state.path)
        bytes[bytes.count - 10] ^= 0x01
        try writeRaw(bytes, to: state.path)
        let corrupt = try TestHelper.run("load", state.path)
        #expect(corrupt.status == 78)
        #expect(corrupt.standardError.contains("fails its checksum"))
        #expect(corrupt.standardError.contains(state.path))
    }

    @Test func secondProcessCannotTakeTheLockUntilTheHolderDies() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("state.json")
        let holder = try TestHelper.Running(["hold-lock", path])
        try #require(holder.waitFor(line: "locked"), "\(holder.standardErrorSoFar)")

        let refused = try TestHelper.run("try-lock", path)
        #expect(refused.status == 75)
        #expect(refused.standardError.contains(path + ".lock"))
        let error = #expect(throws: StateFileError.self) { _ = try StateFile(path: path).lock() }
        #expect(error?.code == .locked)

        holder.kill()
        #expect(try TestHelper.run("try-lock", path).status == 0)
    }

    @Test func secondLockInTheSameProcessIsRefusedUntilTheFirstIsReleased() throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("state.json"))
        let first = try state.lock()
        #expect(first.path == state.path + ".lock")
        let error = #expect(throws: StateFileError.self) { _ = try StateFile(path: state.path).lock() }
        #expect(error?.code == .locked)
        #expect(error?.path == state.lockPath)
        #expect(error?.description.contains(state.lockPath) == true)
        first.release()
        let second = try state.lock()
        second.release()
    }

    @Test func shortWritesAndInterruptsProduceTheSameFile() throws {
        let directory = try TemporaryDirectory()
        let body = largeBody(20_000)
        let reference = StateFile(path: directory.file("reference.json"))
        try reference.save(body: body, version: 2)

        let interrupts = Counter()
        let calls = Counter()
        var state = StateFile(path: directory.file("state.json"))
        state.io.writeSome = { descriptor, buffer throws(Errno) in
            calls.increment()
            if Int.random(in: 0..<5) == 0 {
                interrupts.increment()
                throw Errno.interrupted
            }
            let count = min(buffer.count, Int.random(in: 1...7))
            return try StateFileIO.system.writeSome(descriptor, UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
        try state.save(body: body, version: 2)

        #expect(interrupts.count > 0)
        #expect(calls.count > body.count / 7)
        #expect(try readBytes(state.path) == readBytes(reference.path))
        let loaded = try #require(try state.load(maxSupportedVersion: 2))
        #expect(loaded.version == 2)
        #expect(loaded.body == body)
    }

    @Test func failedFsyncThrowsAndKeepsThePreviousFile() throws {
        let directory = try TemporaryDirectory()
        var state = StateFile(path: directory.file("state.json"))
        try state.save(body: sampleBody, version: 1)
        let before = try FileSnapshot(state.path)

        let attempts = Counter()
        state.io.synchronize = { _ throws(Errno) in
            attempts.increment()
            throw Errno.ioError
        }
        let error = #expect(throws: StateFileError.self) { try state.save(body: largeBody(1000), version: 1) }
        #expect(error?.code == .io)
        #expect(error?.path == state.path)
        #expect(error?.description.contains("Input/output error") == true)
        #expect(error?.description.contains("previous state file was left as it was") == true)
        #expect(attempts.count == 1, "fsync must not be retried")
        #expect(try FileSnapshot(state.path) == before)
        #expect(try temporaryFiles(in: directory.path, of: "state.json").isEmpty)
    }

    @Test func fullDiskGivesAClearErrorAndLosesNothing() throws {
        let directory = try TemporaryDirectory()
        var state = StateFile(path: directory.file("state.json"))
        try state.save(body: sampleBody, version: 1)
        let before = try FileSnapshot(state.path)

        let written = Counter()
        state.io.writeSome = { descriptor, buffer throws(Errno) in
            if written.count >= 3 { throw Errno.noSpace }
            written.increment()
            let count = min(buffer.count, 4096)
            return try StateFileIO.system.writeSome(descriptor, UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
        let error = #expect(throws: StateFileError.self) { try state.save(body: largeBody(50_000), version: 1) }
        #expect(error?.code == .io)
        #expect(error?.path == state.path)
        #expect(error?.description.contains("No space left on device") == true)
        #expect(error?.description.contains("free space") == true)
        #expect(try FileSnapshot(state.path) == before)
        #expect(try temporaryFiles(in: directory.path, of: "state.json").isEmpty)
        #expect(try StateFile(path: state.path).load(maxSupportedVersion: 1)?.body == sampleBody)
    }

    @Test func leftoverTemporariesAreRemovedAndUnrelatedFilesKept() throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("state.json"))
        try state.save(body: sampleBody, version: 1)
        let leftovers = ["state.json.tmp-123-abc", "state.json.tmp-99-ffff", "state.json.tmp-"]
        for name in leftovers { try writeRaw(Array("partial".utf8), to: directory.file(name)) }
        let unrelated = ["state.json.bak", "other.json.tmp-1-2", "state.json.lock", "xstate.json.tmp-1-2", "notes"]
        for name in unrelated { try writeRaw(Array("keep".utf8), to: directory.file(name)) }
        #expect(mkdir(directory.file("state.json.tmp-dir"), 0o700) == 0)

        let lock = try state.lock()
        let removed = try state.removeLeftoverTemporaries(holding: lock)
        #expect(removed == leftovers.sorted())
        let remaining = Set(try FileManager.default.contentsOfDirectory(atPath: directory.path))
        #expect(remaining == Set(unrelated + ["state.json", "state.json.tmp-dir"]))
        #expect(try state.load(maxSupportedVersion: 1)?.body == sampleBody)
        #expect(try state.removeLeftoverTemporaries(holding: lock).isEmpty)

        let other = StateFile(path: directory.file("other.json"))
        let error = #expect(throws: StateFileError.self) { _ = try other.removeLeftoverTemporaries(holding: lock) }
        #expect(error?.code == .invalidArgument)
    }
}

/// Tests that change the process-wide umask. Serialized among themselves; the adapter is
/// umask-proof and the other tests set their fixtures' modes explicitly, so tests running
/// concurrently elsewhere are unaffected by 022.
@Suite(.serialized) struct StateFileModeTests {
    private func withUmask<T>(_ mask: mode_t, _ body: () throws -> T) rethrows -> T {
        let previous = umask(mask)
        defer { umask(previous) }
        return try body()
    }

    @Test func fileLockAndCreatedDirectoriesArePrivateUnderUmask022() throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("var/lib/keyrotd/state.json"))
        try withUmask(0o022) {
            try state.prepareDirectory()
            try state.save(body: sampleBody, version: 1)
            let lock = try state.lock()
            lock.release()
            try state.save(body: largeBody(500), version: 1)
        }
        #expect(try permissions(of: state.path) == 0o600)
        #expect(try permissions(of: state.lockPath) == 0o600)
        for created in ["var", "var/lib", "var/lib/keyrotd"] {
            #expect(try permissions(of: directory.file(created)) == 0o700, "\(created)")
        }
    }

    @Test(arguments: ["277", "077", "000"])
    func modesDoNotDependOnTheUmask(_ mask: String) throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("a/b/state.json"))
        let outcome = try TestHelper.run(umask: mask, "save", state.path)
        #expect(outcome.status == 0, "\(outcome.standardError)")
        #expect(try permissions(of: state.path) == 0o600)
        #expect(try permissions(of: state.lockPath) == 0o600)
        #expect(try permissions(of: directory.file("a")) == 0o700)
        #expect(try permissions(of: directory.file("a/b")) == 0o700)
        #expect(try state.load(maxSupportedVersion: 1)?.body == Array(#"{"saved":true}"#.utf8))
    }

    @Test func existingDirectoryKeepsItsModeUnlessOthersCanWriteIt() throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("shared/state.json"))
        try withUmask(0o022) {
            #expect(mkdir(directory.file("shared"), 0o755) == 0)
            try state.prepareDirectory()
            #expect(try permissions(of: directory.file("shared")) == 0o755)

            for mode: mode_t in [0o775, 0o757, 0o1777] {
                #expect(chmod(directory.file("shared"), mode) == 0)
                let error = #expect(throws: StateFileError.self) { try state.prepareDirectory() }
                #expect(error?.code == .unsafePermissions)
                #expect(error?.path == directory.file("shared"))
                #expect(try permissions(of: directory.file("shared")) == mode)
            }
        }
    }
}

/// One way a state file can be damaged, applied to the bytes of a good file.
struct Damage: Sendable, CustomTestStringConvertible {
    let name: String
    let expected: StateFileError.Code
    let apply: @Sendable ([UInt8]) -> [UInt8]

    var testDescription: String { name }

    private static func headerLength(_ file: [UInt8]) -> Int {
        file.firstIndex(of: 0x0A) ?? 0
    }

    private static func truncated(at point: @escaping @Sendable ([UInt8]) -> Int, _ name: String) -> Damage {
        Damage(name: "truncated \(name)", expected: .corrupt) { Array($0.prefix(point($0))) }
    }

    private static func crafted(_ name: String, _ expected: StateFileError.Code, body: String, version: Int = 1) -> Damage {
        Damage(name: name, expected: expected) { _ in
            StateFileFormat.encode(body: Array(body.utf8), version: version)
        }
    }

    private static func replacingHeader(
        _ name: String, _ edit: @escaping @Sendable (StateFileFormat.Header) -> StateFileFormat.Header
    ) -> Damage {
        Damage(name: name, expected: .corrupt) { file in
            let end = headerLength(file)
            guard let header = StateFileFormat.parseHeader(file[..<end]) else { return file }
            return StateFileFormat.headerLine(edit(header)) + file[end...]
        }
    }

    private static func editingText(_ name: String, _ expected: StateFileError.Code, _ from: String, _ to: String) -> Damage {
        Damage(name: name, expected: expected) { file in
            Array(String(decoding: file, as: UTF8.self).replacingOccurrences(of: from, with: to).utf8)
        }
    }

    static let all: [Damage] = [
        Damage(name: "flipped bit in the body", expected: .checksumMismatch) { file in
            var file = file
            file[headerLength(file) + 20] ^= 0x01
            return file
        },
        editingText("changed value in the body", .checksumMismatch, "hello", "jello"),
        truncated(at: { _ in 0 }, "to 0 bytes"),
        truncated(at: { _ in 10 }, "mid-header"),
        truncated(at: { headerLength($0) }, "before the header's newline"),
        truncated(at: { headerLength($0) + 1 }, "after the header"),
        truncated(at: { headerLength($0) + 30 }, "mid-body"),
        truncated(at: { $0.count - 3 }, "without the closing line"),
        truncated(at: { $0.count - 1 }, "by one byte"),
        Damage(name: "extra byte appended", expected: .corrupt) { $0 + [0x0A] },
        editingText("bad trailer", .corrupt, "\n}\n", "\n]\n"),
        replacingHeader("length one too small") { .init(version: $0.version, crc32: $0.crc32, length: $0.length - 1) },
        replacingHeader("length one too large") { .init(version: $0.version, crc32: $0.crc32, length: $0.length + 1) },
        editingText("space in the header", .corrupt, #""version":1"#, #""version": 1"#),
        editingText("other format name", .corrupt, "keyrotd-state", "keyrotd-other"),
        Damage(name: "uppercase checksum", expected: .corrupt) { file in
            let end = headerLength(file)
            return Array(String(decoding: file[..<end], as: UTF8.self).uppercased().utf8) + file[end...]
        },
        Damage(name: "CRLF line endings", expected: .corrupt) { file in
            Array(String(decoding: file, as: UTF8.self).replacingOccurrences(of: "\n", with: "\r\n").utf8)
        },
        crafted("future version", .futureVersion, body: #"{"keys":[]}"#, version: 2),
        crafted("non-JSON body with a matching checksum", .corrupt, body: "not json at all"),
        crafted("JSON array body with a matching checksum", .corrupt, body: "[1,2,3]"),
        crafted("truncated JSON body with a matching checksum", .corrupt, body: #"{"keys":["#),
    ]
}

import Foundation
import Glibc
import Testing
@testable import KeyRotationAdapters

/// A state file or state directory owned by another user than root or keyrotd's
/// is refused whatever its mode: its owner can read the state and chmod or
/// replace it at will. The message names the owner. Real files; the tests run as
/// root, so the other user is nobody (65534) via chown.
@Suite struct StateFileOwnerTests {
    static let nobody: uid_t = 65534
    static let body = Array(#"{"keys":{}}"#.utf8)

    @Test func aStateFileSomeoneElseOwnsIsRefusedAndLeftUntouched() throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("state.json"))
        try state.save(body: Self.body, version: 1)
        #expect(chown(state.path, Self.nobody, Self.nobody) == 0)
        let before = try FileSnapshot(state.path)
        let error = #expect(throws: StateFileError.self) { try state.load(maxSupportedVersion: 1) }
        #expect(error?.code == .unsafePermissions)
        #expect(error?.description.contains("state file \(state.path) is owned by nobody (uid 65534), neither root nor keyrotd's user") == true, "\(String(describing: error))")
        #expect(try FileSnapshot(state.path) == before)
        #expect(chown(state.path, 0, 0) == 0)
        #expect(try state.load(maxSupportedVersion: 1)?.body == Self.body)
    }

    @Test func aStateDirectorySomeoneElseOwnsIsRefused() throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("theirs/state.json"))
        #expect(mkdir(directory.file("theirs"), 0o700) == 0)
        try state.prepareDirectory()
        #expect(chown(directory.file("theirs"), Self.nobody, Self.nobody) == 0)
        let error = #expect(throws: StateFileError.self) { try state.prepareDirectory() }
        #expect(error?.code == .unsafePermissions)
        #expect(error?.path == directory.file("theirs"))
        #expect(error?.description.contains("state directory \(directory.file("theirs")) is owned by nobody (uid 65534)") == true, "\(String(describing: error))")
    }

    @Test func anOwnerWithoutANameIsShownByUid() throws {
        let directory = try TemporaryDirectory()
        let state = StateFile(path: directory.file("state.json"))
        try state.save(body: Self.body, version: 1)
        #expect(chown(state.path, 4_000_123, 4_000_123) == 0)
        let error = #expect(throws: StateFileError.self) { try state.load(maxSupportedVersion: 1) }
        #expect(error?.description.contains("is owned by uid 4000123, neither") == true, "\(String(describing: error))")
    }
}

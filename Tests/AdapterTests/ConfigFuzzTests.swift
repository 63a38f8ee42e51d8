import Foundation
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// Mutated configurations through `ConfigLoader.load`, the one reader behind
/// `check-config` and `run`: every mutation either gives a configuration or
/// errors, never both or neither, and every problem is one non-empty line. The
/// same cases go through the real binary in `EndToEndTests.ConfigFuzzProcessTests`.
@Suite struct ConfigFuzzTests {
    static let casesPerBase = 600

    @Test func theBasesAreValid() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let fixture = try ConfigFuzzBases(in: scratch)
        for base in fixture.bases {
            let path = scratch.file("\(base.name).toml")
            try Data(base.bytes).write(to: URL(fileURLWithPath: path))
            let loaded = ConfigLoader.load(path: path, environment: fixture.environment)
            #expect(loaded.configuration != nil, "\(base.name): \(loaded.problems.map(\.description))")
            #expect(loaded.problems.isEmpty, "\(base.name): \(loaded.problems.map(\.description))")
        }
    }

    /// Async and yielding after every case: a CPU-bound loop must not hold a thread
    /// of the (2-thread) cooperative pool that the hook tests beside it need.
    @Test func everyMutationIsAcceptedOrRejectedWithOneLineProblems() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let fixture = try ConfigFuzzBases(in: scratch)
        let cases = ConfigFuzzCase.cases(bases: fixture.bases, count: Self.casesPerBase, seed: Fuzzing.seed)
        print("config fuzz: \(cases.count) mutations, seed \(Fuzzing.seedText) (KEYROTD_FUZZ_SEED to replay)")
        let path = scratch.file("mutated.toml")
        var rejected = 0
        var failures = 0
        for fuzzCase in cases where failures < 10 {
            await Task.yield()
            try Data(fuzzCase.bytes).write(to: URL(fileURLWithPath: path))
            let loaded = ConfigLoader.load(path: path, environment: fixture.environment)
            let violations = Self.violations(loaded)
            if !violations.isEmpty {
                failures += 1
                Issue.record("\(violations.joined(separator: "\n"))\n\(fuzzCase)")
            }
            if loaded.configuration == nil { rejected += 1 }
        }
        print("config fuzz: \(rejected) rejected, \(cases.count - rejected) accepted")
        #expect(rejected > 0 && rejected < cases.count, "the mutations should both break and keep configurations")
    }

    /// What breaks the promise that a configuration is either usable or explained.
    static func violations(_ loaded: LoadedConfiguration) -> [String] {
        var found: [String] = []
        if (loaded.configuration == nil) == loaded.errors.isEmpty {
            found.append(loaded.configuration == nil
                ? "rejected without an error" : "accepted despite errors: \(loaded.errors.map(\.description))")
        }
        for problem in loaded.problems {
            let line = problem.formatted(file: loaded.path)
            if problem.message.allSatisfy(\.isWhitespace) {
                found.append("a problem without a message: \(line)")
            }
            if line.contains(where: \.isNewline) {
                found.append("a problem spans lines: \(line.debugDescription)")
            }
        }
        return found
    }
}

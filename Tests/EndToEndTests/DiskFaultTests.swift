import Foundation
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// Disk faults injected into a running `keyrotd run` with libfiu (Debian's
/// fiu-utils: `fiu-run -x` preloads its POSIX wrappers, `fiu-ctrl` switches a
/// fault on and off in the running process). While writes or fsyncs fail the
/// state file is never corrupted and the daemon starts no side effect on state
/// it could not persist; once the disk is back it carries on; short writes are
/// simply resumed.
@Suite struct DiskFaultTests {
    struct Fault: CustomTestStringConvertible, Sendable {
        var name: String
        /// The fiu-ctrl command that switches it on.
        var enable: String
        /// The libfiu failure point, for disabling.
        var point: String
        /// Whether the state can still be written while it is on.
        var writable: Bool

        var testDescription: String { name }
    }

    static let faults = [
        Fault(name: "fsync fails with EIO", enable: "enable name=posix/io/sync/fsync,failinfo=5", point: "posix/io/sync/fsync", writable: false),
        Fault(name: "fsync fails with ENOSPC", enable: "enable name=posix/io/sync/fsync,failinfo=28", point: "posix/io/sync/fsync", writable: false),
        Fault(name: "write fails with ENOSPC", enable: "enable name=posix/io/rw/write,failinfo=28", point: "posix/io/rw/write", writable: false),
        Fault(name: "write fails with EIO", enable: "enable name=posix/io/rw/write,failinfo=5", point: "posix/io/rw/write", writable: false),
        Fault(name: "every write is short", enable: "enable name=posix/io/rw/write/reduce", point: "posix/io/rw/write/reduce", writable: true),
    ]

    static let fiuRun = "/usr/bin/fiu-run"
    static let keys = ["alpha", "beta"]

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: fiuRun), "needs fiu-utils (scripts/setup installs it)"),
          arguments: faults)
    func theStateSurvivesAndNothingRunsOnUnpersistedState(fault: Fault) async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try MistralServer(in: scratch)
        defer { server.stop() }
        let hook = try consumerHook(in: scratch)
        let config = try daemonConfig(in: scratch, server: server, keys: Self.keys, hook: hook, rotateEvery: "3s", overlap: "1s")
        let control = scratch.file("fiu")
        let daemon = try DaemonProcess(
            config: config, logPath: scratch.file("keyrotd.log"), launcher: [Self.fiuRun, "-x", "-f", control])
        let state = StateFile(path: scratch.file("state/state.json"))
        #expect(try await waitFor(seconds: 30) { Set(deploys(in: scratch).map(\.key)) == Set(Self.keys) }, "\(daemon.log())")

        try fiuControl(fault.enable, pid: daemon.child.pid, prefix: control)
        // Side effects already under way when the fault begins may finish; give them a moment.
        try await Task.sleep(for: .milliseconds(1500))
        let sideEffects = { try await server.requestLog().filter { ["POST", "DELETE"].contains($0.string("method")) }.count }
        let before = try await sideEffects()
        var samples = 0
        let end = Date() + 5
        while Date() < end {
            // The state file always loads, whatever the daemon is going through.
            let loaded = try state.load(maxSupportedVersion: StateDocument.schemaVersion)
            let (version, body) = try #require(loaded)
            _ = try StateDocument.decode(body, version: version)
            samples += 1
            try await Task.sleep(for: .milliseconds(200))
        }
        let during = try await sideEffects() - before
        if fault.writable {
            #expect(during > 0, "rotations stopped although the state could be written")
        } else {
            #expect(during == 0, "\(during) create/delete calls while the state could not be written")
        }
        #expect(daemon.child.poll() == nil, "keyrotd exited under the fault:\n\(daemon.log().suffix(2000))")

        try fiuControl("disable name=\(fault.point)", pid: daemon.child.pid, prefix: control)
        let resumed = try await waitFor(seconds: 20) { try await sideEffects() > before + during }
        #expect(resumed, "rotations did not resume after the fault:\n\(daemon.log().suffix(2000))")
        if !fault.writable && fault.point.hasSuffix("fsync") {
            #expect(daemon.log().contains("the state file is written again"))
        }

        // Settle (no new rotations), stop cleanly, and check every promise.
        _ = try daemonConfig(in: scratch, server: server, keys: Self.keys, hook: hook, rotateEvery: "1h", overlap: "1s")
        daemon.signal(SIGHUP)
        #expect(try await waitFor(seconds: 30) { try allIdle(config: config, keys: Self.keys.count) })
        daemon.signal(SIGTERM)
        #expect(await daemon.wait(timeout: .seconds(20)) == 0, "\(daemon.log().suffix(2000))")
        try await checkSettledInvariants(scratch: scratch, server: server, config: config, keys: Self.keys, overlap: 1)
        #expect(samples > 0, "the state file was never sampled under the fault")
    }

    /// A full disk or a closed pipe behind stderr loses log lines, never the daemon
    /// (Foundation's FileHandle.write traps on a failed write; keyrotd does not use it).
    @Test func aFailingStderrLosesLinesNotTheDaemon() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let check = try ChildProcess(
            keyrotdBinary, ["check-config", "--config", scratch.file("missing.toml")],
            environment: ["PATH": "/usr/bin:/bin", "SWIFT_BACKTRACE": "enable=no"], output: "/dev/full")
        #expect(await check.wait(timeout: .seconds(20)) == 78)

        let server = try MistralServer(in: scratch)
        defer { server.stop() }
        let hook = try consumerHook(in: scratch)
        let config = try daemonConfig(in: scratch, server: server, keys: ["alpha"], hook: hook, rotateEvery: "2s", overlap: "1s")
        let daemon = try DaemonProcess(config: config, logPath: "/dev/full")
        #expect(try await waitFor(seconds: 30) { deploys(in: scratch).count >= 3 }, "no rotations with stderr on a full device")
        daemon.signal(SIGTERM)
        #expect(await daemon.wait(timeout: .seconds(20)) == 0)
    }

    private func fiuControl(_ command: String, pid: pid_t, prefix: String) throws {
        let result = try runTool("/usr/bin/fiu-ctrl", ["-f", prefix, "-c", command, String(pid)], environment: ["PATH": "/usr/bin:/bin"])
        #expect(result.status == 0, "fiu-ctrl \(command): \(result)")
    }
}

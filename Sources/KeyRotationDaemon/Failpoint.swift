import Foundation
import KeyRotationAdapters
import Logging
#if DEBUG || KEYROTD_FAILPOINTS
import Synchronization
#endif

/// Test-only fault injection, compiled into debug builds and builds made with
/// `-Xswiftc -DKEYROTD_FAILPOINTS`, never into the release binary `scripts/install`
/// builds: there every function here is empty and no failpoint name or variable
/// exists in the binary.
enum Failpoint {
    /// The boundaries of a rotation a crash can fall on: before and after each
    /// provider call and each hook, and around each state write. "after" means the
    /// side effect happened but its outcome has not reached the loop yet.
    enum Point: String, CaseIterable, Sendable {
        case persistBefore = "persist.before"
        case persistAfter = "persist.after"
        case createBefore = "create.before"
        case createAfter = "create.after"
        case listBefore = "list.before"
        case listAfter = "list.after"
        case verifyBefore = "verify.before"
        case verifyAfter = "verify.after"
        case deleteBefore = "delete.before"
        case deleteAfter = "delete.after"
        case deployHookBefore = "hook.deploy.before"
        case deployHookAfter = "hook.deploy.after"
        case retireHookBefore = "hook.retire.before"
        case retireHookAfter = "hook.retire.after"
    }

    /// `KEYROTD_FAILPOINT=NAME[@N]`: the process exits at once with status 99 (no
    /// clean-up, no state write: a crash at that instant) the Nth time (default
    /// the first) execution reaches the point NAME.
    static func hit(_ point: Point) {
        #if DEBUG || KEYROTD_FAILPOINTS
        guard let armed = Armed.current, armed.point == point else { return }
        guard Armed.hits.add(1, ordering: .sequentiallyConsistent).newValue == armed.nth else { return }
        StandardError.write("failpoint \(point.rawValue)@\(armed.nth): exiting now\n")
        _exit(99)
        #endif
    }

    #if DEBUG || KEYROTD_FAILPOINTS
    private struct Armed: Sendable {
        var point: Point
        var nth: Int

        static let current: Armed? = {
            guard let text = ProcessInfo.processInfo.environment["KEYROTD_FAILPOINT"], !text.isEmpty else { return nil }
            let parts = text.split(separator: "@", maxSplits: 1)
            guard let point = Point(rawValue: String(parts[0])) else {
                StandardError.write("KEYROTD_FAILPOINT=\(text): unknown failpoint\n")
                exit(64)
            }
            let nth = parts.count > 1 ? Int(parts[1]) ?? 1 : 1
            return Armed(point: point, nth: max(1, nth))
        }()

        static let hits = Atomic<Int>(0)
    }
    #endif

    /// `KEYROTD_FAILPOINT_HANG=PATH`: when the loop wakes and PATH exists, it removes
    /// PATH and hangs forever, so a test can prove that systemd's watchdog restarts a
    /// hung loop (and that the restarted daemon, with PATH gone, finishes the work).
    static func hangIfArmed(logger: Logger) {
        #if DEBUG || KEYROTD_FAILPOINTS
        guard let path = ProcessInfo.processInfo.environment["KEYROTD_FAILPOINT_HANG"],
              FileManager.default.fileExists(atPath: path)
        else { return }
        try? FileManager.default.removeItem(atPath: path)
        logger.critical("failpoint: the loop hangs now (\(path))")
        while true { sleep(3600) }
        #endif
    }
}

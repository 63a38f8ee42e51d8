import Foundation
import Logging

/// Test-only fault injection, compiled into debug builds and builds made with
/// `-Xswiftc -DKEYROTD_FAILPOINTS`, never into the release binary `scripts/install`
/// builds.
enum Failpoint {
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

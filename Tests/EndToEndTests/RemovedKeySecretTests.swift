import Foundation
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// A key removed from the configuration while keyrotd was stopped, in the middle of
/// a rotation whose new key never reached its consumers: the next start keeps the
/// record (unmanaged) but drops the undeployed secret from the state file, as a
/// reload that removes the key does. Before, the secret stayed there for good.
@Suite struct RemovedKeySecretTests {
    @Test func aKeyRemovedWhileStoppedLeavesNoSecretInTheState() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try MistralServer(in: scratch)
        defer { server.stop() }
        // beta's deploy hook fails, so its new key stays pending with its secret in the state.
        let hook = try consumerHook(in: scratch, failingFor: "beta")
        let config = try daemonConfig(
            in: scratch, server: server, keys: ["alpha", "beta"], hook: hook, rotateEvery: "1h", overlap: "1s")
        let state = scratch.file("state/state.json")
        var daemon = try DaemonProcess(config: config, logPath: scratch.file("keyrotd.log"))

        var secret: String?
        _ = try await waitFor(seconds: 30) {
            secret = Self.pendingSecret(of: "beta", in: state)
            return secret != nil
        }
        daemon.signal(SIGTERM)
        #expect(await daemon.wait(timeout: .seconds(20)) == 0, "\(daemon.log())")
        let pending = try #require(secret, "beta never held an undeployed secret in the state:\n\(daemon.log())")
        #expect(Self.stateText(state).contains(pending), "the stopped daemon's state should still hold beta's undeployed secret")

        // beta is removed from the configuration while keyrotd is stopped.
        _ = try daemonConfig(in: scratch, server: server, keys: ["alpha"], hook: hook, rotateEvery: "1h", overlap: "1s")
        let notify = try NotifySocket(path: scratch.file("notify.sock"))
        daemon = try DaemonProcess(
            config: config, logPath: scratch.file("keyrotd-2.log"), environment: ["NOTIFY_SOCKET": notify.path])
        defer { daemon.signal(SIGKILL) }
        _ = try #require(notify.receive(until: { $0.hasPrefix("READY=1") }, timeout: .seconds(20)), "\(daemon.log())")

        let text = Self.stateText(state)
        #expect(!text.contains(pending), "the state still holds the undeployed secret of removed key beta")
        let status = try keyrotd(["status", "--json", "--config", config])
        #expect(status.status == 0 && status.stdout.contains("\"beta\""), "beta's record must be kept, unmanaged: \(status.stdout)")
        daemon.signal(SIGTERM)
        #expect(await daemon.wait(timeout: .seconds(20)) == 0, "\(daemon.log())")
    }

    static func stateText(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// `keys.<name>.pending.secret` of the state file's body (the line after the header).
    static func pendingSecret(of name: String, in path: String) -> String? {
        let lines = stateText(path).split(separator: "\n")
        guard lines.count >= 2,
            let body = try? JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any],
            let keys = body["keys"] as? [String: Any], let record = keys[name] as? [String: Any],
            let pending = record["pending"] as? [String: Any]
        else { return nil }
        return pending["secret"] as? String
    }
}

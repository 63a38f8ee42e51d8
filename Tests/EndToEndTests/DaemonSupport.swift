import Foundation
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// `keyrotd run` as a child process, its output kept in a file.
final class DaemonProcess {
    let child: ChildProcess
    let logPath: String

    init(config: String, logPath: String, environment: [String: String] = [:]) throws {
        self.logPath = logPath
        child = try ChildProcess(
            keyrotdBinary, ["run", "--config", config],
            environment: ["PATH": "/usr/bin:/bin", "TZ": "UTC", "SWIFT_BACKTRACE": "enable=no"].merging(environment) { $1 },
            output: logPath)
    }

    deinit {
        child.stop()
    }

    func signal(_ number: Int32) {
        child.signal(number)
    }

    /// Waits for exit up to `timeout`; nil if still running.
    func wait(timeout: Duration) async -> Int32? {
        await child.wait(timeout: timeout)
    }

    func log() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }
}

/// A deploy hook that writes the secret to `<dir>/consumer-<key>` atomically and
/// appends `<key> <key_id> <epoch ms>` to `<dir>/deploys.log` after it did.
/// With `delay`, the hook sleeps that long first (a slow consumer).
func consumerHook(in scratch: Scratch, failingFor failing: String = "", delay: Int = 0) throws -> String {
    try scratch.write("hooks/consumer", """
        #!/bin/sh
        set -eu
        [ "$KEYROTD_EVENT" = deploy ] || exit 0
        [ "$KEYROTD_KEY" != "\(failing)" ] || { echo "refusing on purpose" >&2; exit 3; }
        sleep \(delay)
        IFS= read -r secret
        umask 077
        printf '%s\\n' "$secret" > "\(scratch.path)/consumer-$KEYROTD_KEY.tmp"
        mv -f "\(scratch.path)/consumer-$KEYROTD_KEY.tmp" "\(scratch.path)/consumer-$KEYROTD_KEY"
        echo "$KEYROTD_KEY $KEYROTD_KEY_ID $(date +%s%3N)" >> "\(scratch.path)/deploys.log"
        echo "deployed $KEYROTD_KEY_ID with $secret"

        """, mode: 0o755)
}

func daemonConfig(
    in scratch: Scratch, server: MistralServer, keys: [String], hook: String,
    rotateEvery: String, overlap: String, extra: String = ""
) throws -> String {
    var text = """
        [daemon]
        state_file = "\(scratch.file("state/state.json"))"
        control_socket = "\(scratch.file("control.sock"))"
        catch_up_spacing = "200ms"
        [defaults]
        rotate_every = "\(rotateEvery)"
        overlap = "\(overlap)"
        jitter = "0"
        hook_timeout = "5s"
        retry_initial = "1s"
        retry_max = "2s"
        blocked_retry = "3s"
        \(extra)
        [providers.mistral]
        type = "mistral"
        base_url = "\(server.baseURL)"
        admin_key_file = "\(server.adminKeyFile)"
        requests_per_minute = 60000

        """
    for key in keys {
        text += keySection(key, hooks: [hook])
    }
    return try scratch.write("keyrotd.toml", text)
}

/// `deploys.log` as (key, key id, time), in order.
func deploys(in scratch: Scratch) -> [(key: String, id: String, at: Date)] {
    let text = (try? String(contentsOfFile: scratch.file("deploys.log"), encoding: .utf8)) ?? ""
    return text.split(separator: "\n").compactMap { line in
        let parts = line.split(separator: " ")
        guard parts.count == 3, let ms = Int64(parts[2]) else { return nil }
        return (String(parts[0]), String(parts[1]), Date(millisecondsSince1970: ms))
    }
}

extension Dictionary where Key == String, Value == Any {
    func string(_ key: String) -> String? { self[key] as? String }
    func date(_ key: String) -> Date? { (self[key] as? String).flatMap(Timestamp.parse) }
}

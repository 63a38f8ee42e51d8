import Foundation
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// `keyrotd run` as a child process, its output kept in a file.
final class DaemonProcess {
    let child: ChildProcess
    let logPath: String

    /// `launcher`: a command that execs its arguments (e.g. setpriv with options),
    /// run with keyrotd's command line appended; keyrotd keeps its pid.
    init(config: String, logPath: String, environment: [String: String] = [:], launcher: [String] = []) throws {
        self.logPath = logPath
        let command = launcher + [keyrotdBinary, "run", "--config", config]
        child = try ChildProcess(
            command[0], Array(command.dropFirst()),
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

/// `moreHooks` run after `hook`, in order.
func daemonConfig(
    in scratch: Scratch, server: MistralServer, keys: [String], hook: String, moreHooks: [String] = [],
    rotateEvery: String, overlap: String, extra: String = ""
) throws -> String {
    let hooks = ([hook] + moreHooks).map { "\"\($0)\"" }.joined(separator: ", ")
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
        text += """
            [keys.\(key)]
            provider = "mistral"
            workspace = "7f1e0c3a-5d1b-4c52-9a3e-2b7d8e6f4a10"
            user = "b52d9e10-3c4f-4e8a-8b1d-6a9f0c2e7d35"
            hooks = [\(hooks)]

            """
    }
    return try scratch.write("keyrotd.toml", text)
}

/// `deploys.log` (or another log of `<key> <key_id> <epoch ms>` lines) as (key, key id, time), in order.
func deploys(in scratch: Scratch, log: String = "deploys.log") -> [(key: String, id: String, at: Date)] {
    let text = (try? String(contentsOfFile: scratch.file(log), encoding: .utf8)) ?? ""
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

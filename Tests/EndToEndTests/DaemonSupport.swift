import Foundation
import KeyRotation
import KeyRotationAdapters
import TestSupport
import Testing

/// `keyrotd run` as a child process, its output kept in a file.
final class DaemonProcess {
    let child: ChildProcess
    let logPath: String

    /// `launcher`: a command that execs its arguments (e.g. fiu-run, setpriv with
    /// options), run with keyrotd's command line appended; keyrotd keeps its pid.
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
    rotateEvery: String, overlap: String, extra: String = "", providerExtra: String = "", daemonExtra: String = ""
) throws -> String {
    var text = """
        [daemon]
        \(daemonExtra)
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
        \(providerExtra)

        """
    for key in keys {
        text += keySection(key, hooks: [hook] + moreHooks)
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

/// A server key (as `/_control/keys` lists it) keyrotd named for managed key
/// `name`, by either naming scheme, whatever its instance.
func isKeyrotdKey(_ key: [String: Any], of name: String) -> Bool {
    key.string("name").flatMap(ProviderKeyName.init)?.key == name
}

extension Dictionary where Key == String, Value == Any {
    func string(_ key: String) -> String? { self[key] as? String }
    func date(_ key: String) -> Date? { (self[key] as? String).flatMap(Timestamp.parse) }
}

/// The invariants of issue 6, checked once a daemon has settled after crashes,
/// kills or faults (every crash, fault and hook suite calls this one checker),
/// against the server's keys and request log, the deploy hooks' logs (`<key>
/// <key_id> <epoch ms>` lines, written once a hook's deploy is done) and the state:
/// - exactly one live keyrotd key per managed key;
/// - every consumer holds a key the server accepts, and every deploy hook's log
///   ends with that live key;
/// - no deployed key was deleted before its successor was deployed by every hook
///   and `overlap` had passed (the order is the first log's);
/// - every key created but never deployed (its secret lost) is deleted;
/// - the state file loads (`keyrotd status` exits 0).
/// With `instance`, only keys named for that keyrotd instance count (another
/// keyrotd shares the server).
/// Returns the number of completed rotations and of keys created.
@discardableResult
func checkSettledInvariants(
    scratch: Scratch, server: MistralServer, config: String, keys names: [String], overlap: TimeInterval,
    hookLogs: [String] = ["deploys.log"], instance: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
) async throws -> (rotations: Int, created: Int) {
    #expect(!names.isEmpty, "no keys to check", sourceLocation: sourceLocation)
    let keys = try await server.keys()
    let log = try await server.requestLog()
    let logs = hookLogs.map { deploys(in: scratch, log: $0) }
    var rotations = 0
    for name in names {
        let mine = keys.filter {
            isKeyrotdKey($0, of: name) && (instance == nil || $0.string("name").flatMap(ProviderKeyName.init)?.instance == instance)
        }
        let live = mine.filter { !($0["deleted_at"] is String) }
        #expect(live.count == 1, "\(name): \(live.count) live keys", sourceLocation: sourceLocation)
        let consumer = try String(contentsOfFile: scratch.file("consumer-\(name)"), encoding: .utf8).trimmingCharacters(in: .newlines)
        #expect(await server.accepts(Secret(consumer)), "\(name): the consumer holds a key the server refuses", sourceLocation: sourceLocation)
        for (file, entries) in zip(hookLogs, logs) {
            #expect(entries.last { $0.key == name }?.id == live.first?.string("key_id"),
                    "\(name): \(file) does not end with the live key", sourceLocation: sourceLocation)
        }
        let order = logs[0].filter { $0.key == name }.reduce(into: [(id: String, at: Date)]()) { order, entry in
            if !order.contains(where: { $0.id == entry.id }) { order.append((entry.id, entry.at)) }
        }
        rotations += max(0, order.count - 1)
        for (previous, next) in zip(order, order.dropFirst()) {
            let deletion = try #require(
                log.first { $0.string("method") == "DELETE" && $0.string("key_id") == previous.id && ($0["status"] as? Int) == 200 },
                "\(name): deployed key \(previous.id) was never deleted", sourceLocation: sourceLocation)
            let deletedAt = try #require(deletion.date("time"), sourceLocation: sourceLocation)
            for (file, entries) in zip(hookLogs, logs) {
                let deployed = entries.first { $0.key == name && $0.id == next.id }?.at
                #expect(deployed.map { deletedAt.timeIntervalSince($0) >= overlap - 0.01 } == true,
                        "\(name): \(previous.id) deleted at \(deletedAt), its successor \(next.id) deployed by \(file) at \(deployed.map { "\($0)" } ?? "never") (overlap \(overlap)s)",
                        sourceLocation: sourceLocation)
            }
        }
        for key in mine where !order.contains(where: { $0.id == key.string("key_id") }) {
            #expect(key["deleted_at"] is String, "\(name): orphan \(key.string("key_id") ?? "?") survived", sourceLocation: sourceLocation)
        }
    }
    let status = try keyrotd(["status", "--json", "--config", config])
    #expect(status.status == 0, "the state file does not load: \(status.stderr)", sourceLocation: sourceLocation)
    return (rotations, keys.count)
}

/// `keyrotd status` shows `keys` keys, every one idle with no old key left to
/// retire and its next rotation at least `quiet` away. The settle steps reload
/// or restart the daemon with a long `rotate_every`; idle alone would also hold
/// between two rotations on the old, seconds-long schedule (a state file written
/// before the reload took effect), and a stop then can land on a rotation that
/// has just started, leaving its created, never-deployed key live.
/// `quiet: nil` checks the phases alone.
func allIdle(config: String, keys count: Int, quiet: TimeInterval? = 60) throws -> Bool {
    let status = try keyrotd(["status", "--json", "--config", config])
    let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
    let keys = object?["keys"] as? [[String: Any]] ?? []
    let horizon = quiet.map { Date() + $0 }
    return keys.count == count && keys.allSatisfy { key in
        key["phase"] as? String == "idle" && key["retiring_key_id"] is NSNull
            && horizon.map { (key.date("next_rotation") ?? .distantPast) > $0 } ?? true
    }
}

/// Runs `body` for every case, `width` at a time (each run mostly waits on a
/// daemon's seconds-long schedule); returns the failures the runs reported.
func runConcurrently<Case: Sendable>(
    _ cases: [Case], width: Int = 4, _ body: @escaping @Sendable (Case) async throws -> String?
) async throws -> [String] {
    var failures: [String] = []
    try await withThrowingTaskGroup(of: String?.self) { group in
        var next = cases.makeIterator()
        func addNext() {
            guard let item = next.next() else { return }
            group.addTask { try await body(item) }
        }
        for _ in 0..<width { addNext() }
        while let failure = try await group.next() {
            if let failure { failures.append(failure) }
            addNext()
        }
    }
    return failures
}

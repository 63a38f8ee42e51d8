import Foundation
import KeyRotation
import KeyRotationAdapters

/// The valid configurations the config fuzz suites mutate, with every file they
/// name set up in a scratch directory: hooks (owned by us, 0755, in a 0755
/// directory), credentials, an admin key file. Nothing in them points outside the
/// scratch directory or at a reachable server (base URLs are 127.0.0.1 port 9), so
/// a mutation that stays valid cannot make `keyrotd run` reach anything.
public struct ConfigFuzzBases {
    public let scratch: Scratch
    /// What `check-config` and `run` are given: the credentials directory, and the
    /// state and runtime directories the defaults resolve to.
    public let environment: [String: String]
    public let bases: [(name: String, bytes: [UInt8])]

    public init(in scratch: Scratch) throws {
        self.scratch = scratch
        for hook in ["write-env-file", "reload-proxy", "notify-team", "page-oncall"] {
            try scratch.write("hooks.d/\(hook)", "#!/bin/sh\ncat >/dev/null\n", mode: 0o755)
        }
        try scratch.write("credentials/mistral-admin-key", "admin-key-for-tests\n", mode: 0o600)
        try scratch.write("admin-key", "admin-key-for-tests\n", mode: 0o600)
        try scratch.write("proxy-credentials", "keyrotd:proxy-password-for-tests\n", mode: 0o600)
        try scratch.write("corp-ca.pem", "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n")
        environment = [
            "CREDENTIALS_DIRECTORY": scratch.file("credentials"),
            "STATE_DIRECTORY": scratch.file("state"),
            "RUNTIME_DIRECTORY": scratch.file("run"),
        ]
        let shipped = try String(
            contentsOf: repositoryRoot.appendingPathComponent("etc/keyrotd/keyrotd.toml"), encoding: .utf8)
        let example = shipped
            .replacingOccurrences(of: "/etc/keyrotd/hooks.d/", with: scratch.file("hooks.d") + "/")
            .replacingOccurrences(of: "/etc/keyrotd/mistral-admin-key", with: scratch.file("admin-key"))
            .replacingOccurrences(of: "/var/lib/keyrotd/", with: scratch.file("state") + "/")
            .replacingOccurrences(of: "/run/keyrotd/", with: scratch.file("run") + "/")
            .replacingOccurrences(of: "https://api.mistral.ai\"", with: "http://127.0.0.1:9\"")
        bases = [("example", Array(example.utf8)), ("rich", Array(Self.rich(in: scratch).utf8))]
    }

    /// Every section and most keys: three providers (a credential, a key file, and
    /// one behind an egress proxy with credentials and a private CA), five keys with
    /// their own windows (one overnight), hooks, adoption, alerts, an instance.
    static func rich(in scratch: Scratch) -> String {
        let hooks = scratch.file("hooks.d")
        return """
            [daemon]
            state_file = "\(scratch.file("state/state.json"))"
            control_socket = "\(scratch.file("run/control.sock"))"
            catch_up_spacing = "30s"
            instance = "eu-prod"

            [defaults]
            rotate_every = "30d"
            overlap = "12h"
            jitter = "2h"
            hook_timeout = "90s"
            window = "Mon..Fri 09:00..17:00"
            max_overlap = "3d"
            retry_initial = "15s"
            retry_max = "30min"
            blocked_retry = "4h"
            alert_hooks = ["\(hooks)/page-oncall"]

            [audit]
            every = "12h"
            stale_after = "14d"

            [budget]
            every = "30min"
            thresholds = [25, 50, 80, 95]

            [providers.mistral]
            type = "mistral"
            base_url = "http://127.0.0.1:9"
            admin_key_credential = "mistral-admin-key"
            requests_per_minute = 120

            [providers.backup]
            type = "mistral"
            base_url = "http://[::1]:9/v1"
            admin_key_file = "\(scratch.file("admin-key"))"

            [providers.corp]
            type = "mistral"
            base_url = "https://127.0.0.1:9"
            admin_key_file = "\(scratch.file("admin-key"))"
            proxy = "http://127.0.0.1:9"
            proxy_credentials_file = "\(scratch.file("proxy-credentials"))"
            ca_file = "\(scratch.file("corp-ca.pem"))"
            ca_mode = "replace"
            timeout = "20s"


            """
            + keySection("alpha", hooks: ["\(hooks)/write-env-file", "\(hooks)/reload-proxy"])
            + keySection("beta", provider: "backup", hooks: ["\(hooks)/write-env-file"], extra: """
                rotate_every = "7d"
                overlap = "1h"
                jitter = "0"
                window = "Sat,Sun 02:00..04:00"
                """)
            + keySection("gamma-prod", hooks: ["\(hooks)/write-env-file", "\(hooks)/reload-proxy", "\(hooks)/notify-team"], extra: """
                adopt = "4f6c2a1e-9b7d-4e3f-8a2c-1d5e6f7a8b9c"
                hook_timeout = "5min"
                max_overlap = "7d"
                """)
            + keySection("epsilon", provider: "corp", hooks: ["\(hooks)/write-env-file"])
            + keySection("delta", hooks: ["\(hooks)/notify-team"], user: "e1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8", extra: """
                window = "Fri..Mon 22:00..02:00"
                retry_initial = "1min"
                retry_max = "2h"
                """)
    }
}

/// A `[keys.NAME]` section with the test workspace and user, then `extra` lines.
public func keySection(
    _ name: String, provider: String = "mistral", hooks: [String], user: String = "b52d9e10-3c4f-4e8a-8b1d-6a9f0c2e7d35",
    extra: String = ""
) -> String {
    """
    [keys.\(name)]
    provider = "\(provider)"
    workspace = "7f1e0c3a-5d1b-4c52-9a3e-2b7d8e6f4a10"
    user = "\(user)"
    hooks = [\(hooks.map { "\"\($0)\"" }.joined(separator: ", "))]
    \(extra.isEmpty ? "" : extra + "\n")
    """
}

/// A state document as the daemon leaves it mid-rotation: four keys, one idle,
/// one overlapping with its old key waiting to be deleted, one deploying with the
/// new secret still held, one blocked; the audit's and budget's memories.
public enum StateFixture {
    public static func document(now: Date = Date(timeIntervalSince1970: 1_750_000_000)) -> StateDocument {
        func ref(_ key: String, _ generation: Int, daysAgo: Int) -> ProviderKeyRef {
            ProviderKeyRef(
                id: "4f6c2a1e-\(key.prefix(4))-4b8e-9c1d-00000000000\(generation)",
                name: ProviderKeyName(instance: "fixture", key: key, generation: generation, rotationID: "r\(generation)x9q2").description,
                createdAt: now - .days(Int64(daysAgo)), generation: generation)
        }
        /// A key whose current key is generation `generation`, created `daysAgo`.
        func record(_ name: String, _ phase: Phase, generation: Int, daysAgo: Int) -> KeyRecord {
            var record = KeyRecord(name: name, seed: UInt64(generation))
            record.phase = phase
            record.current = ref(name, generation, daysAgo: daysAgo)
            record.generation = generation
            record.provider = "mistral"
            return record
        }
        var alpha = record("alpha", .idle, generation: 7, daysAgo: 41)
        alpha.nextDue = now + .days(49)
        alpha.jitterDraw = 0.37

        var beta = record("beta", .overlapping, generation: 3, daysAgo: 0)
        beta.previous = RetiringKey(
            key: ref("beta", 2, daysAgo: 90), retireAt: now + .hours(20), hooksDone: [],
            deployedAt: now - .hours(4), usageCheckedAt: now - .hours(1), extensions: 0)
        beta.rotationStartedAt = now - .hours(4)

        var gamma = record("gamma-prod", .deploying, generation: 12, daysAgo: 92)
        gamma.pending = PendingKey(
            generation: 13, name: ProviderKeyName(instance: "fixture", key: "gamma-prod", generation: 13, rotationID: "k2m9").description,
            createAttempted: true, orphans: ["9d1e7b3a-0000-4000-8000-000000000001"],
            id: "9d1e7b3a-0000-4000-8000-000000000013", secret: Secret("fixture-pending-secret-not-real"),
            createdAt: now - .minutes(3), hooksDone: ["/etc/keyrotd/hooks.d/write-env-file"])
        gamma.attempts = 1
        gamma.retryAt = now + .seconds(30)
        gamma.lastError = StepFailure(kind: .transient, code: "hook_exit_2", message: "reload-proxy exited with status 2")
        gamma.rotationStartedAt = now - .minutes(4)

        var delta = record("delta", .blocked, generation: 1, daysAgo: 120)
        delta.blockedStep = .creating
        delta.attempts = 4
        delta.retryAt = now + .hours(6)
        delta.lastError = StepFailure(kind: .needsOperator, code: "http_403", message: "the admin key may not create keys in this workspace")

        return StateDocument(
            keys: ["alpha": alpha, "beta": beta, "gamma-prod": gamma, "delta": delta],
            audit: AuditMemory(reported: ["unmanaged:4f6c2a1e-0000-4000-8000-00000000beef"], lastRun: now - .hours(2)),
            budget: BudgetMemory(month: "2025-06", raised: ["mistral:50"]))
    }
}

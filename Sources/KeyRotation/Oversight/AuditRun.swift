import Foundation

/// The audit: every provider key held against the state records and the
/// configuration. Pure: the caller lists the keys, reads the state and passes
/// the instant; the same inputs always give the same report.
public enum Audit {
    /// Classifies every provider key against the state records and the configuration.
    ///
    /// `keys` must be the provider's complete list: a configured key's current key
    /// absent from it is reported `missing`.
    /// `instance` is this keyrotd's: keys named for another instance are another
    /// keyrotd's (`foreign`), never orphans.
    public static func run(
        keys: [ListedKey], records: [String: KeyRecord], configured: [ManagedKey], instance: String, staleAfter: TimeSpan,
        now: Date
    ) -> AuditReport {
        let rules = AuditRules(records: records, configured: configured, instance: instance, staleAfter: staleAfter, now: now)
        let audited = keys
            .sorted { ($0.name, $0.id) < ($1.name, $1.id) }
            .map(rules.audit)
        let listed = Set(keys.map(\.id))
        let other = records.keys.sorted().compactMap { name in
            records[name].flatMap { rules.missing($0, listed: listed) }
        }
        return AuditReport(generatedAt: now, keys: audited, other: other)
    }

    /// The findings of `report` not yet in `memory`, in report order; updates memory: adds them, and drops ids no
    /// longer found (so a finding that goes away and comes back is reported again). Sets lastRun = report.generatedAt.
    public static func newFindings(in report: AuditReport, memory: inout AuditMemory) -> [AuditFinding] {
        let found = report.findings
        let current = Set(found.map(\.id))
        var reported = memory.reported.filter(current.contains)
        var known = Set(reported)
        var fresh: [AuditFinding] = []
        for finding in found where known.insert(finding.id).inserted {
            fresh.append(finding)
            reported.append(finding.id)
        }
        memory.reported = reported
        memory.lastRun = report.generatedAt
        return fresh
    }
}

/// How a state record knows a provider key.
private enum Relation {
    case current
    case retiring
    /// The new key of a rotation: created, or (create in flight) only its name is known.
    case pending
}

/// The record that knows a provider key, and the configuration of its managed
/// key (nil once the key was removed from the configuration).
private struct Owner {
    var record: KeyRecord
    var relation: Relation
    var managed: ManagedKey?

    var role: AuditedKey.Role {
        guard managed != nil else { return .unconfigured }
        switch relation {
        case .current: return .current
        case .retiring: return .retiring
        case .pending: return .pending
        }
    }
}

/// The rules of `Audit.run`, with the lookups they share built once.
private struct AuditRules {
    let configured: [String: ManagedKey]
    let instance: String
    let staleAfter: TimeSpan
    let now: Date
    /// Owners by provider key id (current, previous, created pending key).
    let byID: [String: Owner]
    /// Owners by provider key name, for creates in flight (pending id not yet known).
    let inFlight: [String: Owner]
    /// The longest `rotate_every` configured: nothing here should live longer
    /// unrotated, so an unmanaged key older than this is flagged.
    let longestRotation: TimeSpan?
    /// Managed key names this keyrotd has or had (configured, or in a state record):
    /// only keys named for one of these (and this instance) can be its orphans.
    let ownNames: Set<String>
    /// Provider key ids a configured key is to adopt: about to be managed.
    let adoptIDs: Set<String>

    init(records: [String: KeyRecord], configured: [ManagedKey], instance: String, staleAfter: TimeSpan, now: Date) {
        self.configured = Dictionary(configured.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.instance = instance
        self.staleAfter = staleAfter
        self.now = now
        longestRotation = configured.map(\.policy.rotateEvery).max()
        ownNames = Set(records.keys).union(configured.map(\.name))
        adoptIDs = Set(configured.compactMap(\.adopt))
        var byID: [String: Owner] = [:]
        var inFlight: [String: Owner] = [:]
        // Sorted, so that in the (corrupt) case of two records claiming one key the result is still stable.
        for name in records.keys.sorted() {
            guard let record = records[name] else { continue }
            let managed = self.configured[name]
            func claim(_ id: String?, _ relation: Relation) {
                guard let id, byID[id] == nil else { return }
                byID[id] = Owner(record: record, relation: relation, managed: managed)
            }
            claim(record.current?.id, .current)
            claim(record.previous?.key.id, .retiring)
            claim(record.pending?.id, .pending)
            if let pending = record.pending, pending.id == nil, inFlight[pending.name] == nil {
                inFlight[pending.name] = Owner(record: record, relation: .pending, managed: managed)
            }
        }
        self.byID = byID
        self.inFlight = inFlight
    }

    func audit(_ key: ListedKey) -> AuditedKey {
        let owner = byID[key.id] ?? inFlight[key.name]
        let subject = Subject(key: key, owner: owner, claim: claim(key, owner: owner))
        let findings = [
            unmanaged(subject), orphan(subject), foreign(subject), legacy(subject), stale(subject), overAge(subject),
            expiring(subject),
        ].compactMap { $0 }
        return AuditedKey(
            id: key.id, name: key.name, workspaceID: key.workspaceID, workspaceName: key.workspaceName,
            createdAt: key.createdAt, lastUsed: key.lastUsed, expiresOn: key.expiresOn,
            managedAs: owner?.record.name, role: owner?.role, findings: findings)
    }

    // MARK: - One rule per kind

    private func unmanaged(_ s: Subject) -> AuditFinding? {
        if let owner = s.owner {
            guard owner.managed == nil else { return nil }
            return s.finding(
                .unmanaged,
                "key \(s.key.id) of \(owner.record.name): the managed key \(owner.record.name) was removed from the configuration and this key is no longer rotated")
        }
        guard !adoptIDs.contains(s.key.id) else { return nil }
        switch s.claim {
        case .orphan, .foreign, .legacy:
            return nil
        case .otherWorkspace(let name, let expected):
            return s.finding(
                .unmanaged,
                "key \(s.key.id) \(s.quotedName) is named for \(name.key) of this keyrotd, but is in workspace \(s.key.workspaceID ?? "(none given)"), not \(name.key)'s workspace \(expected): not this keyrotd's to delete")
        case .unknownKey(let name):
            return s.finding(
                .unmanaged,
                "key \(s.key.id) \(s.quotedName) is named like a keyrotd key, but \(name.key) is no key of this keyrotd (another keyrotd sharing the organisation?)")
        case nil:
            return s.finding(.unmanaged, "key \(s.key.id) \(s.quotedName) is not managed by this keyrotd")
        }
    }

    /// nil for a key a record owns, or whose name keyrotd did not give. Judged
    /// once per key (`audit`), read by every rule.
    private func claim(_ key: ListedKey, owner: Owner?) -> ProviderKeyClaim? {
        guard owner == nil else { return nil }
        return ProviderKeyClaim.judge(
            key, instance: instance, isOwnKey: ownNames.contains, workspaceOf: { configured[$0]?.workspace })
    }

    private func orphan(_ s: Subject) -> AuditFinding? {
        guard !adoptIDs.contains(s.key.id), case .orphan(let name)? = s.claim else { return nil }
        return s.finding(
            .orphan,
            "key \(s.key.id) \(s.quotedName) was created by keyrotd for \(name.key) but no state record knows it: its secret is lost (an interrupted create or a crash)",
            remedy: "keyrotd delete-orphan \(s.key.id)")
    }

    private func foreign(_ s: Subject) -> AuditFinding? {
        guard !adoptIDs.contains(s.key.id), case .foreign(let name)? = s.claim else { return nil }
        return AuditFinding(
            kind: .foreign, keyID: s.key.id, key: nil,
            message: "key \(s.key.id) \(s.quotedName) belongs to keyrotd instance \(name.instance ?? "?") (another keyrotd sharing the organisation; this one is \(instance)): left alone")
    }

    private func legacy(_ s: Subject) -> AuditFinding? {
        guard !adoptIDs.contains(s.key.id), case .legacy(let name)? = s.claim else { return nil }
        return s.finding(
            .legacy,
            "key \(s.key.id) \(s.quotedName) is named by the scheme before instances for \(name.key), and no state record knows it: an orphan of this keyrotd from before the upgrade, or the key of another keyrotd sharing the organisation that is not upgraded yet; keyrotd never deletes it on its own: delete it once no other keyrotd uses it",
            remedy: "keyrotd delete-orphan \(s.key.id)")
    }

    private func stale(_ s: Subject) -> AuditFinding? {
        guard s.owner?.relation != .pending, !s.isForeign else { return nil }
        let limit = now - staleAfter
        if let lastUsed = s.key.lastUsed {
            guard lastUsed < limit else { return nil }
            return s.finding(
                .stale,
                "\(s.described) was last used \(Wording.age(since: lastUsed, now: now)) ago, longer than stale_after \(staleAfter)")
        }
        guard s.key.createdAt < limit else { return nil }
        return s.finding(
            .stale,
            "\(s.described) has never been used in the \(Wording.age(since: s.key.createdAt, now: now)) since it was created (stale_after \(staleAfter))")
    }

    private func overAge(_ s: Subject) -> AuditFinding? {
        let age = now.span(since: s.key.createdAt)
        guard !s.isForeign else { return nil }
        guard let owner = s.owner, let managed = owner.managed else {
            guard s.owner?.relation != .pending, let longestRotation, age > longestRotation else { return nil }
            return s.finding(
                .overAge,
                "\(s.described) is \(Wording.age(since: s.key.createdAt, now: now)) old, older than any rotation policy here allows (longest rotate_every \(longestRotation))")
        }
        let policy = managed.policy
        switch owner.relation {
        case .current:
            let limit = policy.rotateEvery + policy.jitter + policy.maxOverlap
            guard age > limit else { return nil }
            return s.finding(
                .overAge,
                "\(s.described) is \(Wording.age(since: s.key.createdAt, now: now)) old, older than its policy allows (rotate_every \(policy.rotateEvery) + jitter \(policy.jitter) + max_overlap \(policy.maxOverlap))",
                remedy: "keyrotd rotate \(managed.name)")
        case .retiring:
            guard let retireAt = owner.record.previous?.retireAt, now > retireAt + policy.maxOverlap else { return nil }
            return s.finding(
                .overAge,
                "\(s.described) is still at the provider \(Wording.age(since: retireAt, now: now)) after its overlap ended (\(Timestamp.format(retireAt))), longer than max_overlap \(policy.maxOverlap)")
        case .pending:
            return nil
        }
    }

    private func expiring(_ s: Subject) -> AuditFinding? {
        guard let expiresOn = s.key.expiresOn, !s.isForeign else { return nil }
        let remedy = s.rotatedCurrent.map { "keyrotd rotate \($0.name)" }
        if expiresOn <= now {
            return s.finding(
                .expiring,
                "\(s.described) expired on \(Wording.day(expiresOn)) (\(Wording.age(since: expiresOn, now: now)) ago)",
                remedy: remedy)
        }
        if let managed = s.rotatedCurrent {
            // The key must stay valid until its successor is deployed and the overlap is over.
            guard let due = s.owner?.record.nextDue, expiresOn < due + managed.policy.overlap else { return nil }
            return s.finding(
                .expiring,
                "\(s.described) expires on \(Wording.day(expiresOn)), before its next rotation (\(Timestamp.format(due))) and overlap \(managed.policy.overlap) are over",
                remedy: remedy)
        }
        guard s.owner?.managed == nil, expiresOn < now + staleAfter else { return nil }
        return s.finding(
            .expiring,
            "\(s.described) expires on \(Wording.day(expiresOn)) (\(Human.when(expiresOn, now: now)))")
    }

    /// A configured key whose current key the provider does not list.
    func missing(_ record: KeyRecord, listed: Set<String>) -> AuditFinding? {
        guard configured[record.name] != nil, let current = record.current, !listed.contains(current.id) else { return nil }
        return AuditFinding(
            kind: .missing, keyID: nil, key: record.name,
            message: "the current key \(current.id) of \(record.name) is not at the provider: consumers may hold a key the provider no longer knows",
            remedy: "keyrotd rotate \(record.name)")
    }
}

/// One provider key with its owner, and the words findings about it share.
private struct Subject {
    let key: ListedKey
    let owner: Owner?
    /// Whose key a keyrotd-made name nobody owns says it is; nil when owned or not keyrotd-made.
    let claim: ProviderKeyClaim?

    /// The name keyrotd gave the key, read; nil for names keyrotd does not give.
    var providerName: ProviderKeyName? { ProviderKeyName(key.name) }

    /// Another keyrotd's key: its own audit judges its age and use, not this one.
    var isForeign: Bool {
        if case .foreign? = claim { return true }
        return false
    }

    /// The managed key a finding belongs to: the owner's, or for a keyrotd-named
    /// key nobody owns, the one its name says it was made for (so the journal
    /// entry shows up in that key's audit trail).
    var managedKey: String? {
        if let owner { return owner.record.name }
        return providerName?.key
    }

    /// The managed key whose rotation replaces this key, if it is a configured current key.
    var rotatedCurrent: ManagedKey? {
        owner?.relation == .current ? owner?.managed : nil
    }

    /// The provider's name, quoted and on one line.
    var quotedName: String {
        let scalars = key.name.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }
        return "\"" + String(String.UnicodeScalarView(scalars)) + "\""
    }

    /// "key ID of KEY", "retiring key ID of KEY", or for keys no configured key owns, the name too.
    var described: String {
        guard let owner else { return "unmanaged key \(key.id) \(quotedName)" }
        let role = switch owner.relation {
        case .current: "key"
        case .retiring: "retiring key"
        case .pending: "pending key"
        }
        return owner.managed == nil
            ? "\(role) \(key.id) of removed managed key \(owner.record.name)"
            : "\(role) \(key.id) of \(owner.record.name)"
    }

    func finding(_ kind: AuditFinding.Kind, _ message: String, remedy: String? = nil) -> AuditFinding {
        AuditFinding(kind: kind, keyID: key.id, key: managedKey, message: message, remedy: remedy)
    }
}

/// Ages and dates as findings write them.
private enum Wording {
    static func age(since earlier: Date, now: Date) -> String {
        Human.span(seconds: Int64(now.timeIntervalSince(earlier).rounded()))
    }

    /// Providers give expiry as a day: "2026-12-01" for a UTC midnight, the full timestamp otherwise.
    static func day(_ date: Date) -> String {
        let text = Timestamp.format(date)
        return text.hasSuffix("T00:00:00.000Z") ? String(text.prefix(10)) : text
    }
}

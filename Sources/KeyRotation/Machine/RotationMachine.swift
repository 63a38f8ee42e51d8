import Foundation

/// The rotation of one managed key, as a pure state machine.
///
/// ```
///  idle --due--> creating --created--> verifying --ok--> deploying --all hooks ok-->
///  overlapping --overlap passed--> retiring --deleted (or 404), retire hooks ok--> idle
///
///  any step --error--> same step, retried after capped exponential backoff with full jitter
///  401 / 403 / 422  --> blocked (needs an operator; retried every blocked_retry)
///  revoke           --> rotation now, overlap = 0 (joins a rotation in flight)
///  no key yet       --> adopting (adopt = "id") or a first rotation at once
/// ```
///
/// `handle(_:now:)` reads no clock and performs no I/O: it updates `record` and
/// returns the actions for the loop to perform, in order. A `.persist` precedes
/// every side effect whose intent must survive a crash (the create call above
/// all) and follows every outcome. At most one action awaits an outcome, and
/// until that outcome (or a failure) arrives, ticks change nothing.
///
/// After a restart, a fresh machine built from the persisted record resumes with
/// a `.tick`: a create that may have reached the provider is reconciled by
/// listing the deterministic name first; any other step is simply repeated
/// (verify and delete are idempotent, hooks must be).
public struct RotationMachine: Sendable {
    public private(set) var record: KeyRecord
    public var policy: KeyPolicy
    /// Deploy and retire hooks, run in this order.
    public var hooks: [String]
    /// Provider key id to take over when there is no current key yet.
    public var adopt: String?
    /// This keyrotd deployment's name (`[daemon] instance`), part of every key name
    /// it creates: the sweep only ever deletes keys named for it.
    public var instance: String
    /// The key's workspace (provider workspace id): the sweep and the reconcile
    /// only ever consider keys listed in it.
    public var workspace: String
    /// Zone of the rotation window.
    public var timeZone: TimeZone
    /// The action whose outcome is awaited, from when it is returned until its
    /// outcome (or failure) arrives. Not persisted: after a crash nothing is in flight.
    public private(set) var inFlight: Action?

    public var awaiting: Bool { inFlight != nil }

    /// Consecutive failed verifications after which the new key counts as broken
    /// and the step blocks for an operator.
    public static let maxVerifyAttempts = 8

    public init(
        record: KeyRecord, policy: KeyPolicy, hooks: [String], adopt: String? = nil, instance: String, workspace: String,
        timeZone: TimeZone
    ) {
        self.record = record
        self.policy = policy
        self.hooks = hooks
        self.adopt = adopt
        self.instance = instance
        self.workspace = workspace
        self.timeZone = timeZone
    }

    public var name: String { record.name }

    /// When the loop should next send `.tick`: nil while an outcome is awaited; a
    /// past instant when a step is ready now.
    public var nextDeadline: Date? {
        if awaiting { return nil }
        switch record.phase {
        case .idle:
            if record.current == nil { return record.retryAt ?? .distantPast }
            return [record.nextDue, record.retryAt].compactMap { $0 }.max() ?? .distantPast
        case .overlapping:
            let retireAt = record.revoking ? nil : record.previous?.retireAt
            return [retireAt, record.retryAt].compactMap { $0 }.max() ?? .distantPast
        case .blocked:
            return record.retryAt ?? .distantPast
        case .adopting, .creating, .verifying, .deploying, .retiring:
            return record.retryAt ?? .distantPast
        }
    }

    public mutating func handle(_ event: Event, now: Date) -> [Action] {
        switch event {
        case .tick:
            return tick(now: now)
        case .rotateRequested:
            return rotateRequested(now: now)
        case .revokeRequested:
            return revokeRequested(now: now)
        case .created(let key):
            guard case .createKey? = inFlight, var pending = record.pending else { return [] }
            inFlight = nil
            pending.id = key.id
            pending.secret = key.secret
            pending.createdAt = key.createdAt
            record.pending = pending
            record.phase = .verifying
            clearFailure()
            return [
                .persist,
                emit(.keyCreated, keyID: key.id, generation: pending.generation, "created \(key.name)"),
                expect(.verifyKey(id: key.id, secret: key.secret)),
            ]
        case .listed(let keys):
            guard case .listKeys? = inFlight else { return [] }
            inFlight = nil
            switch record.phase {
            case .adopting: return adopted(keys, now: now)
            case .overlapping: return usageChecked(keys, now: now)
            case .retiring: return swept(keys, now: now)
            default: return reconciled(keys, now: now)
            }
        case .verified:
            guard case .verifyKey? = inFlight, let pending = record.pending, let id = pending.id else { return [] }
            inFlight = nil
            record.phase = .deploying
            clearFailure()
            return [.persist, emit(.keyVerified, keyID: id, generation: pending.generation, "new key works")]
                + deployNext(now: now)
        case .hookSucceeded(let path):
            guard case .runHook(let hook)? = inFlight else { return [] }
            inFlight = nil
            guard hook.path == path else { return failed(Self.mismatch("hook \(path)", hook.path), now: now) }
            switch hook.event {
            case .deploy:
                record.pending?.hooksDone.append(path)
                clearFailure()
                return [.persist, emit(.hookSucceeded, keyID: record.pending?.id, "deploy hook \(path) succeeded")]
                    + deployNext(now: now)
            case .retire:
                record.previous?.hooksDone.append(path)
                clearFailure()
                return [.persist, emit(.hookSucceeded, keyID: record.previous?.key.id, "retire hook \(path) succeeded")]
                    + retireNext(now: now)
            }
        case .deleted(let id):
            guard case .deleteKey(let inFlightID)? = inFlight else { return [] }
            inFlight = nil
            guard inFlightID == id else { return failed(Self.mismatch("delete of \(id)", inFlightID), now: now) }
            switch record.phase {
            case .creating:
                record.pending?.orphans.removeAll { $0 == id }
                return [.persist, emit(.orphanDeleted, keyID: id, "deleted unrecorded key \(id) left by an interrupted create")]
                    + createNext(now: now)
            case .retiring:
                guard let previous = record.previous, previous.key.id == id else {
                    record.strays?.removeAll { $0 == id }
                    clearFailure()
                    return [.persist, emit(.orphanDeleted, keyID: id, "deleted stray key \(id)")] + retireNext(now: now)
                }
                record.previous?.deleted = true
                clearFailure()
                return [
                    .persist,
                    emit(.keyRetired, keyID: record.current?.id, oldKeyID: previous.key.id,
                         "deleted old key \(previous.key.id)"),
                ] + retireNext(now: now)
            default:
                return []
            }
        case .failed(let failure):
            guard inFlight != nil else { return [] }
            inFlight = nil
            return failed(failure, now: now)
        }
    }

    // MARK: - Ticks

    private mutating func tick(now: Date) -> [Action] {
        guard !awaiting else { return [] }
        if let retryAt = record.retryAt, now < retryAt { return [] }
        switch record.phase {
        case .idle:
            guard let current = record.current else {
                if let adopt {
                    record.phase = .adopting
                    return [.persist, expect(.listKeys(nameContains: nil))]
                        .with(emit(.rotationStarted, "looking up key \(adopt) to adopt"), at: 1)
                }
                return startRotation(now: now, reason: "no key yet: creating the first")
            }
            guard let due = record.nextDue else {
                schedule(from: current.createdAt)
                return [.persist]
            }
            guard now >= due else { return [] }
            if let window = policy.window, !window.contains(now, in: timeZone) {
                let opening = window.nextOpening(atOrAfter: now, in: timeZone)
                // Outside the window the rotation waits for it, unless the key would
                // expire before a rotation starting then is through (`latestStart`).
                guard let latest = Schedule.latestStart(expiresAt: current.expiresAt, policy: policy), opening > latest else {
                    record.nextDue = opening
                    return [.persist]
                }
                return startRotation(
                    now: now,
                    reason: "due since \(Timestamp.format(due)); the window opens \(Timestamp.format(opening)), after the latest start \(Timestamp.format(latest)) the key's expiry allows")
            }
            return startRotation(now: now, reason: "due since \(Timestamp.format(due))")
        case .adopting:
            guard adopt != nil else {
                record.phase = .idle
                return [.persist] + tick(now: now)
            }
            return [expect(.listKeys(nameContains: nil))]
        case .creating:
            return createNext(now: now)
        case .verifying:
            guard let pending = record.pending, let id = pending.id, let secret = pending.secret else {
                return lostPending(now: now)
            }
            return [expect(.verifyKey(id: id, secret: secret))]
        case .deploying:
            return deployNext(now: now)
        case .overlapping:
            guard let previous = record.previous else { return finishRotation(now: now) }
            guard record.revoking || now >= previous.retireAt else { return [] }
            if !record.revoking && policy.watchesOldKeyUsage {
                return [expect(.listKeys(nameContains: previous.key.name))]
            }
            return beginRetiring()
        case .retiring:
            return retireNext(now: now)
        case .blocked:
            record.phase = record.blockedStep ?? .idle
            record.blockedStep = nil
            record.retryAt = nil
            return [.persist] + tick(now: now)
        }
    }

    // MARK: - Steps

    private mutating func startRotation(now: Date, reason: String, orphans: [String] = []) -> [Action] {
        let generation = record.generation + 1
        let rotationID = String(format: "%06x", record.random.next() & 0xFF_FFFF)
        let name = ProviderKeyName(instance: instance, key: record.name, generation: generation, rotationID: rotationID).description
        record.pending = PendingKey(
            generation: generation, name: name, createAttempted: false, orphans: orphans,
            id: nil, secret: nil, createdAt: nil, hooksDone: [])
        record.phase = .creating
        record.rotationStartedAt = now
        record.notBefore = nil
        clearFailure()
        let started = emit(
            .rotationStarted, oldKeyID: record.current?.id, generation: generation,
            (record.revoking ? "emergency rotation (revoke): " : "rotation started: ") + reason)
        return [started] + createNext(now: now)
    }

    /// Creating: delete orphans found by reconcile, reconcile if a create may have
    /// reached the provider, else create (persisting that intent first).
    private mutating func createNext(now: Date) -> [Action] {
        guard let pending = record.pending else { return lostPending(now: now) }
        if let orphan = pending.orphans.first {
            return [.persist, expect(.deleteKey(id: orphan))]
        }
        if pending.createAttempted {
            return [expect(.listKeys(nameContains: pending.name))]
        }
        let lifetime = policy.keyLifetime
        record.pending?.createAttempted = true
        record.pending?.lifetime = lifetime
        return [.persist, expect(.createKey(name: pending.name, lifetime: lifetime))]
    }

    private mutating func reconciled(_ keys: [ListedKey], now: Date) -> [Action] {
        guard let pending = record.pending else { return lostPending(now: now) }
        // Only the key's workspace: a key of that exact name elsewhere is not this create's.
        let found = keys.filter { $0.name == pending.name && $0.workspaceID == workspace }.map(\.id)
        guard !found.isEmpty else {
            record.pending?.createAttempted = false
            return createNext(now: now)
        }
        record.pending?.orphans = found
        return [
            .persist,
            emit(.orphanFound, generation: pending.generation,
                 "an interrupted create left \(found.count) key(s) named \(pending.name) whose secret is lost: deleting"),
        ] + createNext(now: now)
    }

    private mutating func adopted(_ keys: [ListedKey], now: Date) -> [Action] {
        guard let id = adopt, let key = keys.first(where: { $0.id == id }) else {
            return failed(StepFailure(
                kind: .needsOperator, code: "adopt_not_found",
                message: "adopt = \"\(adopt ?? "")\": the provider has no key with that id"), now: now)
        }
        record.current = ProviderKeyRef(id: key.id, name: key.name, createdAt: key.createdAt, generation: 0, expiresAt: key.expiresOn)
        record.generation = 0
        record.phase = .idle
        record.revoking = false
        record.jitterDraw = record.random.nextUnit()
        clearFailure()
        schedule(from: key.createdAt)
        return [.persist, emit(.adopted, keyID: key.id, generation: 0, "adopted existing key \(key.name)")]
    }

    private mutating func deployNext(now: Date) -> [Action] {
        guard let pending = record.pending, let id = pending.id, let secret = pending.secret else {
            return lostPending(now: now)
        }
        if let hook = hooks.first(where: { !pending.hooksDone.contains($0) }) {
            return [expect(.runHook(HookInvocation(
                path: hook, event: .deploy, key: record.name, keyID: id, oldKeyID: record.current?.id,
                generation: pending.generation, secret: secret)))]
        }
        return finishDeploy(now: now, id: id, pending: pending)
    }

    /// Every deploy hook succeeded: the new key becomes current, its secret is
    /// dropped from the state, and the old key's overlap starts.
    private mutating func finishDeploy(now: Date, id: String, pending: PendingKey) -> [Action] {
        let created = pending.createdAt ?? now
        let old = record.current
        record.current = ProviderKeyRef(
            id: id, name: pending.name, createdAt: created, generation: pending.generation,
            expiresAt: pending.lifetime.map { created + $0 })
        record.generation = pending.generation
        record.pending = nil
        record.jitterDraw = record.random.nextUnit()
        schedule(from: created)
        var actions: [Action] = [
            emit(.deployed, keyID: id, oldKeyID: old?.id, generation: pending.generation,
                 "new key deployed to \(hooks.count) hook(s)"),
        ]
        guard let old else {
            record.phase = .retiring
            return [.persist] + actions + retireNext(now: now)
        }
        let overlap = record.revoking ? TimeSpan.zero : policy.overlap
        let retireAt = now + overlap
        record.previous = RetiringKey(key: old, retireAt: retireAt, deployedAt: now)
        record.phase = .overlapping
        actions.append(emit(
            .overlapStarted, keyID: id, oldKeyID: old.id, generation: pending.generation,
            record.revoking ? "revoke: deleting old key \(old.id) now"
                : "old key \(old.id) stays valid until \(Timestamp.format(retireAt))"))
        return [.persist] + actions + tick(now: now)
    }

    private mutating func beginRetiring() -> [Action] {
        guard let previous = record.previous else { return [] }
        record.phase = .retiring
        return [.persist, expect(.deleteKey(id: previous.key.id))]
    }

    /// Usage-aware retirement: the overlap has passed; the old key's `last_used`
    /// decides whether it goes now. The provider gives a date, so "still in use"
    /// means used on a later day than the deploy finished and, after an earlier
    /// look, no earlier than that look's day (a consumer that switched yesterday
    /// does not hold the key forever). In use: the overlap is extended by one
    /// `overlap` at a time, never past deploy + `max_overlap`, where the key is
    /// deleted anyway. A revoke never waits.
    private mutating func usageChecked(_ keys: [ListedKey], now: Date) -> [Action] {
        guard let previous = record.previous else { return finishRotation(now: now) }
        clearFailure()
        guard !record.revoking, let listed = keys.first(where: { $0.id == previous.key.id }) else {
            return beginRetiring()
        }
        let deployedAt = previous.deployedAt ?? (previous.retireAt - policy.overlap)
        let limit = deployedAt + policy.maxOverlap
        record.previous?.usageCheckedAt = now
        guard let lastUsed = listed.lastUsed, Self.stillUsed(
            lastUsed: lastUsed, deployedAt: deployedAt, lastLook: previous.usageCheckedAt)
        else {
            return beginRetiring()
        }
        let used = String(Timestamp.format(lastUsed).prefix(10))
        guard now < limit else {
            return [emit(
                .retirementForced, keyID: record.current?.id, oldKeyID: previous.key.id,
                "old key \(previous.key.id) (\(previous.key.name)) was still used on \(used), but max_overlap (\(policy.maxOverlap)) has passed: deleting it anyway; consumers still holding it will fail")]
                + beginRetiring()
        }
        let retireAt = min(now + policy.overlap, limit)
        let extensions = (previous.extensions ?? 0) + 1
        record.previous?.retireAt = retireAt
        record.previous?.extensions = extensions
        return [
            .persist,
            emit(.retirementExtended, keyID: record.current?.id, oldKeyID: previous.key.id,
                 "old key \(previous.key.id) (\(previous.key.name)) was used on \(used), after the new key was deployed: some consumer still holds it; overlap extended to \(Timestamp.format(retireAt)) (extension \(extensions), deleted at the latest \(Timestamp.format(limit)))"),
        ]
    }

    /// Day-granular, in UTC, as the provider reports `last_used`.
    static func stillUsed(lastUsed: Date, deployedAt: Date, lastLook: Date?) -> Bool {
        let day = Self.utcDay(lastUsed)
        guard day > Self.utcDay(deployedAt) else { return false }
        return lastLook.map { day >= Self.utcDay($0) } ?? true
    }

    static func utcDay(_ date: Date) -> Int64 {
        let ms = date.millisecondsSince1970
        return ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
    }

    /// Retiring: delete the old key, run retire hooks, then sweep keyrotd-named
    /// strays (a create that reached the provider after keyrotd gave up on it, so
    /// nothing it made outlives a rotation), then finish.
    private mutating func retireNext(now: Date) -> [Action] {
        if let previous = record.previous {
            if !previous.deleted {
                return [expect(.deleteKey(id: previous.key.id))]
            }
            if let hook = hooks.first(where: { !previous.hooksDone.contains($0) }) {
                return [expect(.runHook(HookInvocation(
                    path: hook, event: .retire, key: record.name, keyID: record.current?.id ?? previous.key.id,
                    oldKeyID: previous.key.id, generation: previous.key.generation, secret: nil)))]
            }
        }
        guard let strays = record.strays else {
            return [expect(.listKeys(nameContains: ProviderKeyName.filter(instance: instance, key: record.name)))]
        }
        if let stray = strays.first {
            return [.persist, expect(.deleteKey(id: stray))]
        }
        return finishRotation(now: now)
    }

    /// Strays are keys named for this instance and this key, in the key's
    /// workspace, that no record field holds. Never another instance's (another
    /// keyrotd sharing the organisation), never another workspace's, never a name
    /// of the scheme before instances (a not yet upgraded keyrotd's): the audit
    /// reports those instead.
    private mutating func swept(_ keys: [ListedKey], now: Date) -> [Action] {
        let keep = [record.current?.id, record.previous?.key.id].compactMap { $0 }
        let strays = keys.filter { key in
            guard let name = ProviderKeyName(key.name) else { return false }
            return name.instance == instance && name.key == record.name && key.workspaceID == workspace
                && !keep.contains(key.id)
        }.map(\.id)
        record.strays = strays
        clearFailure()
        guard !strays.isEmpty else { return retireNext(now: now) }
        return [emit(.orphanFound, "found \(strays.count) stray key(s) named \(ProviderKeyName.filter(instance: instance, key: record.name))… that nothing tracks: deleting")]
            + retireNext(now: now)
    }

    private mutating func finishRotation(now: Date) -> [Action] {
        let retired = record.previous?.key.id
        record.previous = nil
        record.strays = nil
        record.phase = .idle
        record.revoking = false
        record.rotationStartedAt = nil
        clearFailure()
        if record.nextDue == nil, let current = record.current { schedule(from: current.createdAt) }
        let completed = emit(
            .rotationCompleted, keyID: record.current?.id, oldKeyID: retired, generation: record.generation,
            "rotation completed;" + (record.nextDue.map { " next rotation \(Timestamp.format($0))" } ?? ""))
        if record.revokeQueued {
            record.revokeQueued = false
            record.revoking = true
            return [completed] + startRotation(now: now, reason: "revoke: replacing the key deployed before the request")
        }
        return [.persist, completed]
    }

    /// A record that claims a step needing the pending key but has none can only
    /// come from a hand-edited or foreign state file: start the rotation over.
    private mutating func lostPending(now: Date) -> [Action] {
        let leftover = record.pending?.id
        record.pending = nil
        record.phase = .idle
        record.revoking = false
        guard record.current != nil || adopt == nil else {
            return [.persist] + tick(now: now)
        }
        return startRotation(
            now: now, reason: "the state file lost track of the rotation in flight", orphans: leftover.map { [$0] } ?? [])
    }

    // MARK: - Failures

    private mutating func failed(_ failure: StepFailure, now: Date) -> [Action] {
        let step = record.phase
        if step == .overlapping, record.revoking || now >= retirementLimit ?? .distantFuture {
            // The usage look failed, but the old key goes anyway: revoked, or max_overlap reached.
            let note = emit(.stepFailed, keyID: record.current?.id, oldKeyID: record.previous?.key.id,
                            "could not read the old key's last use (\(failure)); deleting it anyway (\(record.revoking ? "revoked" : "max_overlap reached"))",
                            failure: failure)
            clearFailure()
            return [note] + beginRetiring()
        }
        record.lastError = failure
        if failure.kind == .deferred {
            record.retryAt = now + policy.retryInitial
            return [.persist, emit(.stepFailed, keyID: record.pending?.id, "\(step.rawValue) waits: \(failure)", failure: failure)]
        }
        record.attempts += 1
        let brokenKey = step == .verifying && record.attempts >= Self.maxVerifyAttempts
        if failure.kind == .needsOperator || brokenKey {
            record.blockedStep = step
            record.phase = .blocked
            record.retryAt = capped(now + policy.blockedRetry, step: step, now: now)
            return [
                .persist,
                emit(.blocked, keyID: record.pending?.id,
                     "\(step.rawValue) is blocked until an operator acts (next try \(Timestamp.format(now + policy.blockedRetry))): \(failure)",
                     failure: failure),
            ]
        }
        // A Retry-After is honoured, within reason: never beyond the slow retry of a blocked step.
        let delay = failure.retryAfter.map { min(max($0, .seconds(1)), policy.blockedRetry) } ?? backoff()
        record.retryAt = capped(now + delay, step: step, now: now)
        return [
            .persist,
            emit(.stepFailed, keyID: record.pending?.id,
                 "\(step.rawValue) failed (attempt \(record.attempts), retry in \(delay)): \(failure)",
                 failure: failure),
        ]
    }

    /// When the old key goes at the latest: deploy + max_overlap.
    private var retirementLimit: Date? {
        guard let previous = record.previous else { return nil }
        return (previous.deployedAt ?? (previous.retireAt - policy.overlap)) + policy.maxOverlap
    }

    /// A failing usage look never keeps the old key past max_overlap: its retry is
    /// due by then at the latest, and a failure then deletes the key anyway.
    private func capped(_ retryAt: Date, step: Phase, now: Date) -> Date {
        guard step == .overlapping, let limit = retirementLimit else { return retryAt }
        return min(retryAt, max(now, limit))
    }

    /// Capped exponential backoff with full jitter: uniform in
    /// [retry_initial/2, min(retry_max, retry_initial * 2^(attempts-1))]. The small
    /// floor keeps a run of unlucky draws from hammering the provider.
    private mutating func backoff() -> TimeSpan {
        let exponent = min(record.attempts - 1, 30)
        let ceiling = min(policy.retryMax, policy.retryInitial * Int64(1 << exponent))
        let floor = min(policy.retryInitial / 2, ceiling)
        return floor + (ceiling - floor).multiplied(by: record.random.nextUnit())
    }

    private mutating func clearFailure() {
        record.attempts = 0
        record.retryAt = nil
        record.lastError = nil
        record.blockedStep = nil
    }

    // MARK: - Operator requests

    private mutating func rotateRequested(now: Date) -> [Action] {
        switch record.phase {
        case .idle where record.current == nil && adopt != nil:
            return [.refuse("\(record.name): waiting to adopt key \(adopt ?? ""); remove adopt from the configuration to create a new key instead")]
        case .idle:
            return startRotation(now: now, reason: "requested by an operator")
                .with(emit(.rotateRequested, keyID: record.current?.id, "rotation requested by an operator"), at: 0)
        case .blocked:
            record.retryAt = now
            return [emit(.rotateRequested, "retry of blocked step requested by an operator")] + tick(now: now)
        default:
            return [.refuse("\(record.name): a rotation is already in flight (\(record.phase.rawValue))")]
        }
    }

    /// Revoke replaces and deletes the key consumers hold at the time of the request,
    /// with no overlap. Before deploy that is the current key: the rotation (started
    /// now, or the one in flight) deletes it as soon as the new key is deployed.
    /// During overlapping or retiring consumers already hold the new key: the old one
    /// is deleted at once and a second emergency rotation replaces the new one, so
    /// every key that existed at the request is gone.
    private mutating func revokeRequested(now: Date) -> [Action] {
        let hasKey = record.current != nil && !(record.phase == .blocked && record.blockedStep == .adopting)
        guard hasKey, record.phase != .adopting else {
            return [.refuse("\(record.name): there is no key to revoke yet")]
        }
        let note = emit(.revokeRequested, keyID: record.current?.id, "revoke requested: the key in use is replaced and deleted with no overlap")
        switch record.phase {
        case .idle:
            record.revoking = true
            return [note] + startRotation(now: now, reason: "revoke requested by an operator")
        case .blocked:
            record.revoking = true
            if let step = record.blockedStep, step == .overlapping || step == .retiring { record.revokeQueued = true }
            record.retryAt = now
            return [note, .persist] + tick(now: now)
        case .overlapping:
            record.revoking = true
            record.revokeQueued = true
            record.previous?.retireAt = now
            record.retryAt = nil  // a usage look backing off must not hold up a revoke
            return [note, .persist] + tick(now: now)
        case .retiring:
            record.revoking = true
            record.revokeQueued = true
            return [note, .persist]
        case .creating, .verifying, .deploying, .adopting:
            record.revoking = true
            return [note, .persist]
        }
    }

    // MARK: - Schedule

    /// next due = creation + rotate_every + this cycle's jitter, moved to the next
    /// opening of the window.
    private mutating func schedule(from created: Date) {
        let due = Schedule.dueTime(created: created, jitterDraw: record.jitterDraw, policy: policy, timeZone: timeZone)
        if let notBefore = record.notBefore, notBefore > due {
            record.nextDue = policy.window?.nextOpening(atOrAfter: notBefore, in: timeZone) ?? notBefore
        } else {
            record.nextDue = due
        }
        if let latest = Schedule.latestStart(expiresAt: record.current?.expiresAt, policy: policy),
           let next = record.nextDue, next > latest {
            record.nextDue = latest
        }
    }

    /// Applies a new policy (a reload): a rotation in flight keeps going, and the
    /// next due time is recomputed with the same jitter draw wherever it already
    /// belongs to the current key: idle, and also once the new key is deployed
    /// (overlapping, retiring, or blocked there), whose due time was computed at
    /// deploy with the old policy (keeping it would start one more rotation on the
    /// old schedule). Before the deploy there is nothing to move: the deploy
    /// schedules the new key with the policy of its time.
    public mutating func apply(policy: KeyPolicy, hooks: [String], adopt: String?) {
        self.policy = policy
        self.hooks = hooks
        self.adopt = adopt
        if record.pending == nil, let current = record.current { schedule(from: current.createdAt) }
    }

    /// Moves an overdue idle key's start to `at` (start-up catch-up, staggered).
    public mutating func catchUp(startingAt at: Date) {
        guard record.phase == .idle, let current = record.current else { return }
        record.notBefore = at
        schedule(from: current.createdAt)
    }

    // MARK: - Helpers

    private static func mismatch(_ got: String, _ expected: String) -> StepFailure {
        StepFailure(kind: .transient, code: "mismatched_outcome", message: "got the outcome of \(got) while \(expected) was in flight")
    }

    private mutating func expect(_ action: Action) -> Action {
        inFlight = action
        return action
    }

    private func emit(
        _ kind: AuditEvent.Kind, keyID: String? = nil, oldKeyID: String? = nil, generation: Int? = nil,
        _ message: String, failure: StepFailure? = nil
    ) -> Action {
        .emit(AuditEvent(
            kind, key: record.name, keyID: keyID, oldKeyID: oldKeyID,
            generation: generation ?? record.pending?.generation ?? record.generation,
            message: message, failure: failure))
    }
}

private extension Array where Element == Action {
    func with(_ action: Action, at index: Int) -> [Action] {
        var copy = self
        copy.insert(action, at: Swift.min(index, copy.count))
        return copy
    }
}

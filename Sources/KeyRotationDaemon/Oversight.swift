import Foundation
import KeyRotation
import KeyRotationAdapters
import Logging

/// When the scheduled audit and budget check run next, and what they remember
/// (persisted in the state file, so a restart neither repeats a finding nor
/// raises a budget alert twice).
struct OversightSchedule {
    var audit: AuditMemory
    var budget: BudgetMemory?
    var nextAudit: Date
    var nextBudget: Date
    var auditRunning = false
    var budgetRunning = false

    /// Both run at start; an audit that ran within `auditEvery` before a restart
    /// keeps its cadence instead.
    init(audit: AuditMemory, budget: BudgetMemory?, now: Date, auditEvery: TimeSpan) {
        self.audit = audit
        self.budget = budget
        nextAudit = audit.lastRun.map { max(now, $0 + auditEvery) } ?? now
        nextBudget = now
    }

    func nextDeadline(spendWatched: Bool) -> Date? {
        [auditRunning ? nil : nextAudit, budgetRunning || !spendWatched ? nil : nextBudget].compactMap { $0 }.min()
    }
}

/// The result of an oversight task, handed back to the loop.
enum OversightOutcome: Sendable {
    /// The provider's key lists for an audit, scheduled (`requester` nil) or asked for.
    case audited(AuditListing, requester: ControlResponder?)
    /// The month's spend, and the instant it was read for (its month is the alerts' month).
    case spendRead(Result<[SpendFigure], StepFailure>, at: Date)
    /// A batch of alert hook runs has ended.
    case alertsDone
    /// `delete-orphan`: the keyrotd-named keys, before anything is deleted.
    case orphanLookedUp(keyID: String, Result<(provider: String, key: ListedKey)?, StepFailure>, ControlResponder)
    case orphanDeleted(provider: String, key: ListedKey, StepFailure?, ControlResponder)
}

struct AuditListing: Sendable {
    /// The state records when the listing started: a finding must hold against
    /// these and against the records when it ended, so a step that ran meanwhile
    /// (a create landing, a delete finishing) never shows up as an orphan.
    var before: [String: KeyRecord]
    /// Every provider's keys, by `[providers.*]` name.
    var listings: [String: [ListedKey]] = [:]
    var failure: StepFailure?
    /// Read only for an audit an operator asked for.
    var spend: Result<[SpendFigure], StepFailure>?
}

extension Daemon {
    var hasSpendSource: Bool { providers.values.contains { $0 is any SpendSource } }

    /// Every record the state holds, managed or not.
    func allRecords() -> [String: KeyRecord] {
        var records = unmanaged
        for (name, machine) in machines { records[name] = machine.record }
        return records
    }

    func startOversightIfDue(group: inout TaskGroup<Void>) {
        let now = Date()
        if !oversight.auditRunning && oversight.nextAudit <= now {
            startAudit(requester: nil, group: &group)
        }
        if hasSpendSource && !oversight.budgetRunning && oversight.nextBudget <= now {
            oversight.budgetRunning = true
            let providers = self.providers
            let continuation = self.continuation
            group.addTask {
                let at = Date()
                let result = await readSpend(providers, now: at)
                continuation.yield(.oversight(.spendRead(result, at: at)))
            }
        }
    }

    func startAudit(requester: ControlResponder?, group: inout TaskGroup<Void>) {
        if requester == nil { oversight.auditRunning = true }
        let before = allRecords()
        let providers = self.providers
        let continuation = self.continuation
        group.addTask {
            var listing = AuditListing(before: before)
            for (name, provider) in providers.sorted(by: { $0.key < $1.key }) {
                do throws(StepFailure) {
                    listing.listings[name] = try await provider.listKeys(nameContains: nil)
                } catch {
                    listing.failure = error
                    break
                }
            }
            if requester != nil && listing.failure == nil { listing.spend = await readSpend(providers, now: Date()) }
            continuation.yield(.oversight(.audited(listing, requester: requester)))
        }
    }

    func finish(_ outcome: OversightOutcome, group: inout TaskGroup<Void>) {
        switch outcome {
        case .audited(let listing, let requester):
            finishAudit(listing, requester: requester, group: &group)
        case .spendRead(let result, let at):
            finishBudget(result, at: at, group: &group)
        case .alertsDone:
            alertBatches -= 1
        case .orphanLookedUp(let keyID, let result, let responder):
            deleteOrphan(keyID, found: result, responder, group: &group)
        case .orphanDeleted(_, let key, let failure, let responder):
            if let failure {
                responder.fail(ControlError(code: "provider", message: "deleting \(key.id) failed: \(failure)"))
                return
            }
            audit(AuditEvent(
                .orphanDeleted, key: ProviderKeyName(key.name)?.key ?? "-", keyID: key.id,
                message: "deleted orphan \(key.id) (\(key.name)) on an operator's request"))
            responder.reply(ControlResponse(result: DeletedOrphan(keyID: key.id, name: key.name)))
        }
    }

    // MARK: - Audit

    private func finishAudit(_ listing: AuditListing, requester: ControlResponder?, group: inout TaskGroup<Void>) {
        let now = Date()
        if requester == nil { oversight.auditRunning = false }
        // Stopping: a scheduled result is dropped unrecorded (the next start audits again).
        if requester == nil && draining { return }
        if let failure = listing.failure {
            guard let requester else {
                let retry = min(configuration.audit.every, .minutes(15))
                oversight.nextAudit = now + retry
                logger.warning("scheduled audit could not list the provider's keys: \(failure); next try in \(retry)")
                return
            }
            requester.fail(ControlError(code: "provider", message: "the audit could not list the provider's keys: \(failure)"))
            return
        }
        var report = auditReport(listing, now: now)
        if let requester {
            switch listing.spend {
            case .success(let figures): report.spend = figures
            case .failure(let failure): report.spendError = failure.description
            case nil: break
            }
            requester.reply(ControlResponse(result: report))
            return
        }
        oversight.nextAudit = now + configuration.audit.every
        let memory = oversight.audit
        let fresh = Audit.newFindings(in: report, memory: &oversight.audit)
        persist()
        if dirty {
            // Unrecorded findings would be written again after a restart: wait until the state can be written.
            oversight.audit = memory
            oversight.nextAudit = now + min(configuration.audit.every, .minutes(15))
            return
        }
        for finding in fresh {
            var metadata: Logger.Metadata = ["event": "audit-finding", "finding": "\(finding.kind.rawValue)"]
            if let key = finding.key { metadata["key"] = "\(key)" }
            if let id = finding.keyID { metadata["key_id"] = "\(id)" }
            let level: Logger.Level = finding.kind == .orphan || finding.kind == .missing ? .warning : .notice
            let remedy = finding.remedy.map { " (\($0))" } ?? ""
            logger.log(level: level, "audit: \(finding.message)\(remedy)", metadata: metadata)
        }
        logger.info("audit: \(report.keys.count) provider key(s), \(report.findings.count) finding(s), \(fresh.count) new")
        guard !fresh.isEmpty else { return }
        runAlerts(event: "audit", runs: [[
            "KEYROTD_FINDINGS": String(fresh.count),
            "KEYROTD_FINDING_IDS": fresh.map(\.id).joined(separator: " "),
        ]], group: &group)
    }

    /// One report over every provider; a finding counts only if the records from
    /// before and after the listing both support it.
    private func auditReport(_ listing: AuditListing, now: Date) -> AuditReport {
        let after = allRecords()
        var keys: [AuditedKey] = []
        var other: [AuditFinding] = []
        for (provider, listed) in listing.listings.sorted(by: { $0.key < $1.key }) {
            let configured = configuration.keys.filter { $0.provider == provider }
            func records(_ all: [String: KeyRecord]) -> [String: KeyRecord] {
                all.filter { ($0.value.provider ?? self.configuration.key(named: $0.key)?.provider) == provider }
            }
            let run = { (records: [String: KeyRecord]) in
                Audit.run(
                    keys: listed, records: records, configured: configured, instance: self.instance,
                    staleAfter: self.configuration.audit.staleAfter, now: now)
            }
            let confirmed = Set(run(records(listing.before)).findings.map(\.id))
            let report = run(records(after))
            keys += report.keys.map { key in
                var key = key
                key.findings = key.findings.filter { confirmed.contains($0.id) }
                return key
            }
            other += report.other.filter { confirmed.contains($0.id) }
        }
        keys.sort { ($0.name, $0.id) < ($1.name, $1.id) }
        return AuditReport(generatedAt: now, keys: keys, other: other)
    }

    // MARK: - Budget

    private func finishBudget(_ result: Result<[SpendFigure], StepFailure>, at readAt: Date, group: inout TaskGroup<Void>) {
        let now = Date()
        oversight.budgetRunning = false
        if draining { return }
        let figures: [SpendFigure]
        switch result {
        case .failure(let failure):
            let retry = min(configuration.budget.every, .minutes(15))
            oversight.nextBudget = now + retry
            logger.warning("could not read the spend limit and usage: \(failure); next try in \(retry)")
            return
        case .success(let read):
            figures = read
        }
        oversight.nextBudget = now + configuration.budget.every
        let memory = oversight.budget
        let alerts = Budget.alerts(figures: figures, thresholds: configuration.budget.thresholds, memory: &oversight.budget, now: readAt)
        // Persisted before any hook runs: a restart never raises an alert twice,
        // and an alert that could not be recorded is not raised yet.
        if oversight.budget != memory {
            persist()
            if dirty {
                oversight.budget = memory
                oversight.nextBudget = now + min(configuration.budget.every, .minutes(15))
                return
            }
        }
        var hookRuns: [[String: String]] = []
        for alert in alerts {
            let figure = alert.figure
            let scope = figure.scope == .organization
                ? "organisation" : "workspace \(figure.workspaceName ?? figure.workspaceID ?? "?")"
            let level: Logger.Level = switch Budget.severity(threshold: alert.threshold) {
            case .notice: .notice
            case .warning: .warning
            case .error: .error
            case .critical: .critical
            }
            let currency = figure.currency.map { " \($0)" } ?? ""
            logger.log(
                level: level,
                "budget: \(scope) spend reached \(alert.threshold)% of its monthly limit: \(String(format: "%.2f", figure.spent)) of \(String(format: "%.2f", figure.limit))\(currency) (\(String(format: "%.1f", figure.percent))%) in \(alert.month)",
                metadata: [
                    "event": "budget-threshold", "threshold": "\(alert.threshold)", "scope": "\(figure.scopeID)",
                    "percent": "\(String(format: "%.1f", figure.percent))",
                ])
            hookRuns.append(Budget.hookVariables(alert))
        }
        runAlerts(event: "budget", runs: hookRuns, group: &group)
    }

    // MARK: - Alert hooks

    /// A step that needs an operator: alert hooks run with KEYROTD_EVENT=failed.
    func alertBlocked(_ event: AuditEvent, group: inout TaskGroup<Void>) {
        var variables = ["KEYROTD_KEY": event.key]
        if let failure = event.failure {
            variables["KEYROTD_ERROR_CODE"] = failure.code
            variables["KEYROTD_ERROR"] = failure.message
        }
        if let id = event.keyID { variables["KEYROTD_KEY_ID"] = id }
        runAlerts(event: "failed", runs: [variables], group: &group)
    }

    /// Runs every alert hook once per entry of `runs` (its variables), one after
    /// another in order, beside the loop. A failing alert hook is logged and
    /// changes nothing else.
    func runAlerts(event: String, runs: [[String: String]], group: inout TaskGroup<Void>) {
        let paths = configuration.alertHooks
        guard !paths.isEmpty, !runs.isEmpty, !draining else { return }
        let hooks = self.hooks
        let logger = self.logger
        let timeout = Self.alertTimeout
        let continuation = self.continuation
        alertBatches += 1
        group.addTask {
            defer { continuation.yield(.oversight(.alertsDone)) }
            for variables in runs {
                for path in paths {
                    let outcome = await hooks.runAlert(path: path, event: event, variables: variables, timeout: timeout)
                    guard case .failed(let failure) = outcome else { continue }
                    logger.warning("alert hook \(path) (\(event)) failed: \(failure)", metadata: ["hook": "\(path)"])
                }
            }
        }
    }

    static let alertTimeout = KeyPolicy.standard.hookTimeout

    // MARK: - Orphans

    func lookUpOrphan(_ keyID: String, _ responder: ControlResponder, group: inout TaskGroup<Void>) {
        let providers = self.providers
        let continuation = self.continuation
        group.addTask {
            var found: (provider: String, key: ListedKey)?
            do throws(StepFailure) {
                for (name, provider) in providers.sorted(by: { $0.key < $1.key }) {
                    if let key = try await provider.listKeys(nameContains: "keyrotd/").first(where: { $0.id == keyID }) {
                        found = (name, key)
                        break
                    }
                }
            } catch {
                continuation.yield(.oversight(.orphanLookedUp(keyID: keyID, .failure(error), responder)))
                return
            }
            continuation.yield(.oversight(.orphanLookedUp(keyID: keyID, .success(found), responder)))
        }
    }

    /// Deletes `keyID` only if it is keyrotd-named, not for another instance, in its
    /// key's workspace, and no record knows it, checked against the records as they
    /// are now (on the loop, after the lookup).
    private func deleteOrphan(
        _ keyID: String, found: Result<(provider: String, key: ListedKey)?, StepFailure>, _ responder: ControlResponder,
        group: inout TaskGroup<Void>
    ) {
        let hit: (provider: String, key: ListedKey)?
        switch found {
        case .failure(let failure):
            responder.fail(ControlError(code: "provider", message: "could not list the provider's keys: \(failure)"))
            return
        case .success(let value):
            hit = value
        }
        let records = allRecords()
        let claim = hit.flatMap { hit in
            ProviderKeyClaim.judge(
                hit.key, instance: instance, isOwnKey: { self.configuration.key(named: $0) != nil || records[$0] != nil },
                workspaceOf: { self.configuration.key(named: $0)?.workspace })
        }
        guard let (providerName, key) = hit, let claim else {
            responder.fail(ControlError(
                code: "unknown_key",
                message: "the provider has no keyrotd-made key with id \(keyID); delete-orphan only removes keys named keyrotd/…"))
            return
        }
        if let owner = Self.owner(of: key, in: records) {
            responder.fail(ControlError(code: "refused", message: "\(keyID) (\(key.name)) is \(owner): not an orphan"))
            return
        }
        if let adopter = configuration.keys.first(where: { $0.adopt == key.id }) {
            responder.fail(ControlError(code: "refused", message: "\(keyID) (\(key.name)) is to be adopted by \(adopter.name): not an orphan"))
            return
        }
        let refusal: String? = switch claim {
        case .orphan, .legacy:
            nil
        case .foreign(let name):
            "\(keyID) (\(key.name)) belongs to keyrotd instance \(name.instance ?? "?"), another keyrotd sharing the organisation (this one is \(instance)): not deleted; only that keyrotd, or the provider's console, may delete it"
        case .unknownKey(let name):
            "\(keyID) (\(key.name)) belongs to \(name.key), which this keyrotd never managed (another keyrotd sharing the organisation?): not deleted"
        case .otherWorkspace(let name, let workspace):
            "\(keyID) (\(key.name)) is in workspace \(key.workspaceID ?? "(none given)"), not \(name.key)'s workspace \(workspace): not this keyrotd's, not deleted"
        }
        if let refusal {
            responder.fail(ControlError(code: "refused", message: refusal))
            return
        }
        guard !draining, let provider = providers[providerName] else {
            responder.fail(ControlError(code: "shutting_down", message: "keyrotd is stopping"))
            return
        }
        let continuation = self.continuation
        group.addTask {
            var failure: StepFailure?
            do throws(StepFailure) { try await provider.deleteKey(id: key.id) } catch { failure = error }
            continuation.yield(.oversight(.orphanDeleted(provider: providerName, key: key, failure, responder)))
        }
    }

    /// How a state record knows `key` ("the current key of alpha"), or nil.
    static func owner(of key: ListedKey, in records: [String: KeyRecord]) -> String? {
        for (name, record) in records.sorted(by: { $0.key < $1.key }) {
            if record.current?.id == key.id { return "the current key of \(name)" }
            if record.previous?.key.id == key.id { return "the retiring key of \(name)" }
            if let pending = record.pending, pending.id == key.id || pending.name == key.name {
                return "the new key of \(name)'s rotation in flight"
            }
            if record.pending?.orphans.contains(key.id) == true || record.strays?.contains(key.id) == true {
                return "already being deleted by \(name)'s rotation"
            }
        }
        return nil
    }
}

/// The month's spend from every provider that reports it.
private func readSpend(_ providers: [String: any KeyProvider], now: Date) async -> Result<[SpendFigure], StepFailure> {
    var figures: [SpendFigure] = []
    for (name, provider) in providers.sorted(by: { $0.key < $1.key }) {
        guard let source = provider as? any SpendSource else { continue }
        do {
            figures += try await source.spend(now: now).map { figure in
                var figure = figure
                figure.provider = name
                return figure
            }
        } catch {
            return .failure(error)
        }
    }
    return .success(figures)
}

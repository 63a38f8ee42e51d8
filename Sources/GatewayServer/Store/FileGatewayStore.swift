import Foundation
import GatewayCore
import KeyRotation
import KeyRotationAdapters
import NIOPosix

/// `GatewayStore` for one gateway process: state in memory, made durable in
/// `state_directory` with keyrotd's state-file recipe (0600, temporary file, fsync,
/// rename, directory fsync): `keys.state` holds the upstream secrets, `spend.state` the
/// spend book.
///
/// Writes are group-committed: every change bumps a version; one writer at a time saves
/// the whole book (it is small) on NIO's blocking-I/O pool and wakes every caller whose
/// change that save covered, so concurrent reservations share one fsync. Settlements do
/// not wait for their write (a crash before it charges the reservation in full, which
/// never undercounts); reservations against a budget, keys and alert claims do.
public actor FileGatewayStore: GatewayStore {
    public static let keysFileName = "keys.state"
    public static let spendFileName = "spend.state"
    static let schemaVersion = 1

    private let keysFile: StateFile
    private let spendFile: StateFile
    private var currentKeys: [String: UpstreamKey]
    private var book: SpendBook
    private var limiter = RateLimiter()
    private let started = ContinuousClock.now

    private var version: UInt64 = 0
    private var savedVersion: UInt64 = 0
    private var writing = false
    private var waiters: [(version: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []

    /// What `open` found besides the state itself, for the start-up log.
    public struct Opening: Sendable {
        public var keys: Int
        /// Reservations a previous run left open, now charged in full.
        public var chargedReservations: Money
    }

    private init(directory: String, keys: [String: UpstreamKey], book: SpendBook) {
        self.keysFile = StateFile(path: directory + "/" + Self.keysFileName)
        self.spendFile = StateFile(path: directory + "/" + Self.spendFileName)
        self.currentKeys = keys
        self.book = book
    }

    /// Loads both files from `directory` (missing files are an empty state). Reservations a
    /// crashed run left open are charged in full and saved before this returns.
    /// Blocking: call before serving.
    public static func open(directory: String) throws -> (store: FileGatewayStore, opening: Opening) {
        let keysFile = StateFile(path: directory + "/" + keysFileName)
        let spendFile = StateFile(path: directory + "/" + spendFileName)
        try keysFile.prepareDirectory()
        var keys: [String: UpstreamKey] = [:]
        if let (_, body) = try keysFile.load(maxSupportedVersion: schemaVersion, checkingJSON: false) {
            do {
                keys = try JSONDecoder().decode(KeysDocument.self, from: Data(body)).keys
            } catch {
                throw GatewayStoreError.corrupt(keysFile.path, "not a keys document: \(error)")
            }
        }
        var book = SpendBook()
        if let (_, body) = try spendFile.load(maxSupportedVersion: schemaVersion, checkingJSON: false) {
            let document: SpendDocument
            do {
                document = try JSONDecoder().decode(SpendDocument.self, from: Data(body))
            } catch {
                throw GatewayStoreError.corrupt(spendFile.path, "not a spend document: \(error)")
            }
            switch document.book() {
            case .success(let loaded): book = loaded
            case .failure(let problem): throw GatewayStoreError.corrupt(spendFile.path, problem.message)
            }
        }
        let open = book.entries.values.reduce(Money.zero) { $0 + $1.reserved }
        if open > .zero {
            book.chargeOutstandingReservations()
            try spendFile.save(body: try encode(SpendDocument(book)), version: schemaVersion)
        }
        let store = FileGatewayStore(directory: directory, keys: keys, book: book)
        return (store, Opening(keys: keys.count, chargedReservations: open))
    }

    static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(value))
    }

    // MARK: Keys

    public func key(named name: String) -> UpstreamKey? { currentKeys[name] }

    public func keys() -> [String: UpstreamKey] { currentKeys }

    public func setKey(_ key: UpstreamKey, named name: String) async throws {
        var next = currentKeys
        next[name] = key
        let body = try Self.encode(KeysDocument(keys: next))
        let file = keysFile
        try await NIOThreadPool.singleton.runIfActive {
            try file.save(body: body, version: Self.schemaVersion)
        }
        // Only a durable key becomes current: exit 0 of the hook means "in use and durable".
        currentKeys[name] = key
    }

    // MARK: Spend

    public func reserve(role: String, month: BudgetMonth, amount: Money, budget: Money?) async throws
        -> SpendBook.ReserveOutcome
    {
        let outcome = book.reserve(role: role, month: month, amount: amount, budget: budget)
        guard case .reserved(let id) = outcome else { return outcome }
        guard budget != nil else {
            // Nothing to enforce: recorded like a settlement, without waiting for the disk.
            changed()
            return outcome
        }
        do {
            try await durable()
        } catch {
            book.release(role: role, month: month, id: id)
            changed()
            throw error
        }
        return outcome
    }

    public func settle(
        role: String, month: BudgetMonth, id: UInt64, cost: Money, usage: Usage?, budget: Money?, alertAt: [Int]
    ) async -> [Int] {
        let crossed = book.settle(
            role: role, month: month, id: id, cost: cost, usage: usage, budget: budget, alertAt: alertAt)
        if crossed.isEmpty {
            changed()
            return []
        }
        // An alert is claimed once: raise it only when the claim is on disk, so a crash
        // cannot raise it twice. If the save fails the claim stays in memory and the
        // next save carries it; the alert is raised now rather than lost.
        try? await durable()
        return crossed
    }

    public func release(role: String, month: BudgetMonth, id: UInt64) {
        book.release(role: role, month: month, id: id)
        changed()
    }

    public func spend(role: String, month: BudgetMonth) -> SpendBook.Entry {
        book.entry(role: role, month: month)
    }

    // MARK: Rate limits (per process: the shared store will hold them for replicas)

    private var now: Double {
        let elapsed = ContinuousClock.now - started
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    public func admit(role: String, tokens: Int, limits: RateLimiter.Limits) -> RateLimiter.Decision {
        limiter.admit(role: role, tokens: tokens, limits: limits, now: now)
    }

    public func refund(role: String, tokens: Int, limits: RateLimiter.Limits) {
        limiter.refund(role: role, tokens: tokens, limits: limits, now: now)
    }

    public func remaining(role: String, limits: RateLimiter.Limits) -> (requests: Int?, tokens: Int?) {
        limiter.remaining(role: role, limits: limits, now: now)
    }

    // MARK: Group commit

    /// Records a change that must reach the disk soon, without waiting for it.
    private func changed() {
        version += 1
        startWriting()
    }

    /// Records a change and returns once a save that includes it is durable.
    private func durable() async throws {
        version += 1
        let mine = version
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            waiters.append((mine, continuation))
            startWriting()
        }
    }

    private func startWriting() {
        guard !writing else { return }
        writing = true
        Task { await self.writeUntilClean() }
    }

    private func writeUntilClean() async {
        while savedVersion < version {
            let target = version
            let file = spendFile
            var failure: (any Error)?
            do {
                let body = try Self.encode(SpendDocument(book))
                try await NIOThreadPool.singleton.runIfActive {
                    try file.save(body: body, version: Self.schemaVersion)
                }
            } catch {
                failure = error
            }
            savedVersion = target
            var still: [(version: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
            for waiter in waiters {
                if waiter.version <= target {
                    if let failure { waiter.continuation.resume(throwing: failure) } else { waiter.continuation.resume() }
                } else {
                    still.append(waiter)
                }
            }
            waiters = still
            if failure != nil, version == target {
                // Nothing newer to save: leave the book dirty for the next change to retry.
                savedVersion = target - 1
                break
            }
        }
        writing = false
    }
}

public enum GatewayStoreError: Error, CustomStringConvertible {
    case corrupt(String, String)

    public var description: String {
        switch self {
        case .corrupt(let path, let reason): "\(path): \(reason); the file was left as it is"
        }
    }
}

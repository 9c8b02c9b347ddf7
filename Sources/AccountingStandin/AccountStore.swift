import ChatCore
import ChatStore
import Foundation
import Logging
import Synchronization

/// Users' credits in the stand-in's database (tables `accounts` and `usage`), with each account's state kept in memory.
///
/// The stand-in is one process that owns its accounts, so it keeps a copy of each account it serves and
/// changes it in memory, one change of a user at a time (`AccountSlot.turn`); users run side by side. Every
/// change is made durable with ONE conditional write before it is answered: the whole new state stored in the
/// user's row if it is still at the version the copy came from (`version + 1`), or an insert for a new
/// account. Concurrent writes of different users are committed together, one transaction and one sync to disk
/// for all of them (`AccountDatabase`).
/// If the version no longer matches (another process, or someone with a shell, wrote), the copy is read again
/// and the change recomputed, so correctness never rests on being the only writer. A state that breaks the
/// invariants (a negative balance) is never written.
///
/// What it promises: every answer comes either from a change the database committed against the copy (which
/// proves the copy was current), or from a copy read from the database within the call; a refusal (402, 404, 409)
/// or a repeat that writes nothing is recomputed on a fresh read when it came from an older copy. Settled
/// entries are archived to `usage` (keyed by the entry's id, so a repeat is a no-op) after the answer, and
/// pruned from the account by its next write; statistics wait for archives in flight.
struct AccountStore: Sendable {
    /// Where the accounts are stored.
    let database: AccountDatabase
    private let reservationTTL: Duration
    private let clock: @Sendable () -> Date
    private let logger: Logger
    private let slots = AccountSlots()
    /// What the store did, for tests and diagnostics.
    let counters = StoreCounters()
    /// How often one change is tried before the caller gets 503 `ACCOUNT_BUSY`.
    static let maxAttempts = 100
    /// How far back a reread of `usage` for session ids reaches before the last one, for other processes'
    /// clocks running behind this one's.
    static let clockMargin: TimeInterval = 300
    /// How long an account unused in this process stays in memory.
    static let idleEviction: Duration = .seconds(600)

    /// The models and their prices.
    let catalog: ModelCatalog

    /// Opens the database at `databasePath` (creating it, its tables and its indexes if needed).
    init(
        databasePath: String, reservationTTL: Duration, clock: @escaping @Sendable () -> Date = { Date() }, catalog: ModelCatalog = .builtIn,
        logger: Logger
    ) throws {
        self.catalog = catalog
        database = try AccountDatabase(path: databasePath, logger: logger)
        self.reservationTTL = reservationTTL
        self.clock = clock
        self.logger = logger
    }

    /// The current time as the store sees it (tests move it), to the millisecond a BSON date keeps, so that
    /// what a call answers equals what a later read answers.
    var now: Date {
        Date(timeIntervalSince1970: (clock().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }

    /// Succeeds when the database answers.
    func ping() async throws {
        try await database.ping()
    }

    /// Lets the archives in flight finish, then closes the database.
    func shutdown() async throws {
        try await database.shutdown()
    }

    // MARK: Operations

    /// The user's account as stored now, read from the database, with due expiries applied (and stored): an empty
    /// one if they never had credits.
    func account(_ userID: String) async throws -> Account {
        try await modify(userID, "account", .fresh) { _, _, _ in }.account
    }

    /// Grants `credits` to `userID` for `days` days.
    func allocate(to userID: String, credits: Int, days: Int, notes: String?, by allocator: String) async throws -> Allocation {
        try await modify(userID, "allocate") { account, now, _ in
            let allocation = Allocation(
                id: ObjectID.make(now: now), originalCredits: credits, remaining: credits,
                expiresAt: now.addingTimeInterval(Double(days) * 86_400), notes: notes, allocatedBy: allocator, createdAt: now
            )
            account.allocate(allocation)
            return allocation
        }.result
    }

    /// Reserves what `estimatedTokens` of `model` cost for streaming session `sessionID` (see `Account.reserve`);
    /// a session that was already settled and archived is 409 too.
    func reserve(
        userID: String, sessionID: String, chatSessionID: String?, model: ModelInfo, estimatedTokens: Int
    ) async throws -> (entry: LedgerEntry, created: Bool) {
        let cost = Pricing.estimate(tokens: estimatedTokens, model: model)
        let ttl = Double(reservationTTL.components.seconds) + Double(reservationTTL.components.attoseconds) / 1e18
        return try await modify(userID, "reserve") { account, now, history in
            let entry = LedgerEntry(
                id: ObjectID.make(now: now), kind: .stream, status: .reserved, sessionID: sessionID, chatSessionID: chatSessionID,
                service: "chat-service", operation: "streaming", modelID: model.id, estimatedTokens: estimatedTokens,
                reservedCredits: cost, held: 0, draws: [], createdAt: now, expiresAt: now.addingTimeInterval(ttl), settlement: nil
            )
            // A session archived earlier must not be reserved again.
            if account.stream(sessionID) == nil, account.available >= cost, history.contains(sessionID) {
                throw AccountingErrors.sessionExists
            }
            return try account.reserve(entry)
        }.result
    }

    /// Settles streaming session `sessionID` with the tokens used, priced at `model` (else the reservation's
    /// model); a settled session answers its stored settlement again; unknown is 404.
    func finalize(userID: String, sessionID: String, usage: TokenUsage, model: ModelInfo?, success: Bool) async throws -> LedgerEntry {
        try await modify(userID, "finalize") { account, now, _ in
            if let open = account.stream(sessionID) {
                let pricing = model ?? open.modelID.flatMap(catalog.model(id:)) ?? catalog.model(id: catalog.defaultModelID)!
                let cost = Pricing.cost(usage, model: pricing)
                return account.settle(sessionID, cost: cost, usage: usage, success: success, now: now) ?? open
            }
            if let archived = try await archivedStream(userID: userID, sessionID: sessionID) { return archived }
            throw AccountingErrors.sessionNotFound
        }.result
    }

    /// Records usage: with credits, charged at once (402 when the balance is below them); without, only recorded.
    func record(userID: String, entry: LedgerEntry) async throws {
        if (entry.settlement?.creditsUsed ?? 0) > 0 {
            try await modify(userID, "record") { account, _, _ in try account.charge(entry) }
            return
        }
        _ = try await database.commit(.usage(entry, userID: userID))
    }

    /// Waits for the archives of settled entries that are in flight: statistics read `usage` after it.
    func flushArchives() async {
        await database.flush()
    }

    /// How many due accounts one sweep visits.
    static let sweepBatch = 100

    /// Applies due expiries and archives settled entries of up to `limit` accounts that have something due;
    /// returns how many it visited. Also lets go of the copies of accounts unused for `idleEviction`. The
    /// reservation sweeper calls it every few seconds.
    @discardableResult
    func sweep(limit: Int = sweepBatch) async throws -> Int {
        let now = self.now
        let due = try await database.dueAccounts(at: now, limit: limit)
        for userID in due {
            do {
                try await tidy(userID)
            } catch {
                logger.warning("sweep could not update an account", metadata: ["userId": "\(userID)", "error": "\(error)"])
            }
        }
        slots.evict(idleFor: Self.idleEviction)
        return due.count
    }

    /// Expires what is due in `userID`'s account, archives its settled entries and prunes them (the sweep).
    func tidy(_ userID: String) async throws {
        let account = try await modify(userID, "sweep", .asIs) { _, _, _ in }.account
        guard !account.settledEntries.isEmpty else { return }
        await database.flush()
        try await modify(userID, "sweep", .asIs) { _, _, _ in }
    }

    // MARK: Changing an account

    /// What an operation's answer may rest on.
    enum Freshness {
        /// The row read from the database in this call (balance, check).
        case fresh
        /// A write acknowledged against the copy, else a copy read in this call: the default.
        case verified
        /// The copy as it is; only a write that conflicts reads again (the sweep, which answers nothing).
        case asIs
    }

    /// Applies `change` to `userID`'s account, after due expiries and pruning what is archived, and writes the
    /// result with one conditional write (none when nothing changed); recomputed on a fresh copy while other
    /// writers get there first. `change` may run several times, so it must depend only on its arguments.
    @discardableResult
    private func modify<T: Sendable>(
        _ userID: String, _ operation: String, _ freshness: Freshness = .verified,
        _ change: (inout Account, Date, SessionHistory) async throws -> T
    ) async throws -> (result: T, account: Account) {
        let slot = slots.slot(for: userID)
        await slot.turn.acquire()
        defer { slot.turn.release() }
        var mustRead = freshness == .fresh
        for attempt in 1...Self.maxAttempts {
            let (cached, known) = slot.copy
            let original: Account
            let history: SessionHistory
            let read: Bool
            if let cached, !mustRead {
                (original, history, read) = (cached, known, false)
            } else {
                (original, history) = try await load(userID, history: known)
                slot.keep(original, history: history)
                read = true
            }
            mustRead = true
            let now = self.now
            let archived = slot.archived
            var account = original
            account.prune(archived)
            _ = account.expire(at: now)
            let result: T
            do {
                result = try await change(&account, now, history)
            } catch let error as ChatError where !read && freshness == .verified && Self.isRefusal(error) {
                counters.count(\.rereads)
                continue  // refused on an older copy: decide again on the stored one
            }
            guard account != original else {
                if !read && freshness == .verified {
                    counters.count(\.rereads)
                    continue  // answered from an older copy without a write: answer from the stored one
                }
                archive(account, of: slot)
                return (result, account)
            }
            guard account.isConsistent else {
                throw ChatError(.internal, code: "ACCOUNT_INCONSISTENT", message: "The change would break the account's invariants")
            }
            account.version = original.version + 1
            let outcome: WriteOutcome
            do {
                outcome = try await database.commit(.account(account, expectedVersion: original.version, at: now))
            } catch {
                slot.forget()  // the write may or may not have landed
                throw error
            }
            counters.count(\.writes)
            guard outcome == .applied else {
                // Another writer changed (or created) the document: read it again, after a little backoff.
                counters.count(\.conflicts)
                slot.forget()
                try await Task.sleep(for: .microseconds(Int.random(in: 0...(200 * min(attempt, 25)))))
                continue
            }
            var seen = history
            seen.note(account)
            slot.keep(account, history: seen)
            slot.pruned(archived)
            archive(account, of: slot)
            return (result, account)
        }
        logger.warning("an account kept changing under every attempt", metadata: ["userId": "\(userID)", "operation": "\(operation)"])
        throw AccountingErrors.busy
    }

    /// A refusal that an older copy may have caused: insufficient credits, an unknown or a taken session.
    private static func isRefusal(_ error: ChatError) -> Bool {
        [.paymentRequired, .notFound, .conflict].contains(error.kind)
    }

    /// Reads the account document (an empty account if there is none) and brings the session history up to
    /// date: every session id in `usage` for a first read, those settled since the last read (less
    /// `clockMargin`) after that.
    private func load(_ userID: String, history: SessionHistory) async throws -> (Account, SessionHistory) {
        counters.count(\.reads)
        let asOf = now
        let (stored, sessions) = try await database.load(userID, sessionsSettledSince: history.asOf?.addingTimeInterval(-Self.clockMargin))
        let account = stored ?? .empty(userID)
        var known = history
        known.ids.formUnion(sessions)
        known.note(account)
        known.asOf = asOf
        return (account, known)
    }

    /// Archives the settled entries of `account` not archived yet, in the background: each is inserted into
    /// `usage` with the next group commit, then pruned from the account by its next write (or the sweep).
    private func archive(_ account: Account, of slot: AccountSlot) {
        let userID = account.userID
        let logger = logger
        for entry in slot.claimForArchive(account.settledEntries) {
            database.enqueue(.usage(entry, userID: userID)) { result in
                if case .failure(let error) = result {
                    logger.warning("a settled entry could not be archived yet", metadata: ["userId": "\(userID)", "error": "\(error)"])
                }
                slot.archiveEnded(entry.id, written: (try? result.get()) == .applied)
            }
        }
    }

    /// The archived streaming session `sessionID` of `userID`, if there is one.
    private func archivedStream(userID: String, sessionID: String) async throws -> LedgerEntry? {
        let entry = try await database.archivedEntry(userID: userID, sessionID: sessionID)
        return entry?.kind == .stream ? entry : nil
    }
}

/// Counts of what an `AccountStore` did since it started.
final class StoreCounters: Sendable {
    /// The counters.
    struct Counts: Sendable, Equatable {
        /// Account documents read.
        var reads = 0
        /// Conditional account writes acknowledged (applied or not).
        var writes = 0
        /// Account writes that found another writer's version.
        var conflicts = 0
        /// Answers recomputed on a fresh read because they came from an older copy without a write.
        var rereads = 0
    }

    private let counts = Mutex(Counts())

    /// A snapshot.
    var snapshot: Counts { counts.withLock { $0 } }

    /// Adds one to `counter`.
    func count(_ counter: WritableKeyPath<Counts, Int>) {
        counts.withLock { $0[keyPath: counter] += 1 }
    }
}

import ChatCore
import ChatStore
import Foundation
import Logging

/// Users' credits in MongoDB (collections `accounts` and `usage`).
///
/// Every change of a balance is one compare-and-swap of the user's single account document: read it, apply
/// due expiries and the change in Swift (`Account`), write it back with `updateOne({_id, version})` and
/// `$set` of the new state and `version + 1`. A writer that lost the race matches nothing and retries on a
/// fresh copy, so changes from any number of threads or processes apply one at a time, each whole or not at
/// all, and a state that breaks the invariants (a negative balance) is never written. Settled entries are
/// then copied to `usage` (keyed by the entry's id, so a repeat is a no-op) and removed from the account.
struct AccountStore: Sendable {
    let clients: MongoClientPool
    private let reservationTTL: Duration
    private let clock: @Sendable () -> Date
    private let logger: Logger
    /// How often one change is tried before the caller gets 503 `ACCOUNT_BUSY`.
    static let maxAttempts = 100

    /// Starts the store's threads (connecting on first use); throws on a malformed URI.
    init(configuration: MongoConfiguration, reservationTTL: Duration, clock: @escaping @Sendable () -> Date = { Date() }, logger: Logger) throws {
        clients = try MongoClientPool(configuration: configuration, logger: logger)
        self.reservationTTL = reservationTTL
        self.clock = clock
        self.logger = logger
    }

    /// The current time as the store sees it (tests move it), to the millisecond a BSON date keeps, so that
    /// what a call answers equals what a later read answers.
    var now: Date {
        Date(timeIntervalSince1970: (clock().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }

    /// Creates the indexes the sweep and the lookups need (idempotent): call once at start.
    func prepare() async throws {
        let database = clients.databaseName
        try await clients.withClient("createIndexes") { client in
            try MongoCollection.with(StoredAccount.accounts, in: database, client: client) { accounts in
                try accounts.writeCommand([
                    "createIndexes": .string(StoredAccount.accounts),
                    "indexes": [["key": ["nextDeadline": 1], "name": "nextDeadline_1"]],
                ])
            }
            try MongoCollection.with(StoredAccount.usage, in: database, client: client) { usage in
                try usage.writeCommand([
                    "createIndexes": .string(StoredAccount.usage),
                    "indexes": [
                        ["key": ["userId": 1, "sessionId": 1], "name": "userId_1_sessionId_1"],
                        ["key": ["userId": 1, "settledAt": 1], "name": "userId_1_settledAt_1"],
                    ],
                ])
            }
        }
    }

    /// Succeeds when MongoDB answers `ping`.
    func ping() async throws {
        try await clients.withClient("ping") { client in
            _ = try runCommand(["ping": 1], database: "admin", client: client)
        }
    }

    /// Stops the threads and closes the connections.
    func shutdown() async throws {
        try await clients.shutdown()
    }

    /// Drops the whole database: for tests that each use one of their own.
    func dropDatabase() async throws {
        let database = clients.databaseName
        try await clients.withClient("dropDatabase") { client in
            _ = try runCommand(["dropDatabase": 1], database: database, client: client)
        }
    }

    // MARK: Operations

    /// The user's account with due expiries applied (and stored): an empty one if they never had credits.
    func account(_ userID: String) async throws -> Account {
        try await modify(userID, "account") { _, _, _ in }.account
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
        return try await modify(userID, "reserve") { account, now, archive in
            let entry = LedgerEntry(
                id: ObjectID.make(now: now), kind: .stream, status: .reserved, sessionID: sessionID, chatSessionID: chatSessionID,
                service: "chat-service", operation: "streaming", modelID: model.id, estimatedTokens: estimatedTokens,
                reservedCredits: cost, held: 0, draws: [], createdAt: now, expiresAt: now.addingTimeInterval(ttl), settlement: nil
            )
            // Only on the way to a write: a session archived earlier must not be reserved again.
            if account.stream(sessionID) == nil, account.available >= cost, try archive.stream(sessionID) != nil {
                throw AccountingErrors.sessionExists
            }
            return try account.reserve(entry)
        }.result
    }

    /// Settles streaming session `sessionID` with the tokens used, priced at `model` (else the reservation's
    /// model); a settled session answers its stored settlement again; unknown is 404.
    func finalize(userID: String, sessionID: String, usage: TokenUsage, model: ModelInfo?, success: Bool) async throws -> LedgerEntry {
        try await modify(userID, "finalize") { account, now, archive in
            if let open = account.stream(sessionID) {
                let pricing = model ?? open.modelID.flatMap(ModelCatalog.model(id:)) ?? ModelCatalog.model(id: ModelCatalog.defaultModelID)!
                let cost = Pricing.cost(usage, model: pricing)
                return account.settle(sessionID, cost: cost, usage: usage, success: success, now: now) ?? open
            }
            if let archived = try archive.stream(sessionID) { return archived }
            throw AccountingErrors.sessionNotFound
        }.result
    }

    /// Records usage: with credits, charged at once (402 when the balance is below them); without, only recorded.
    func record(userID: String, entry: LedgerEntry) async throws {
        if (entry.settlement?.creditsUsed ?? 0) > 0 {
            try await modify(userID, "record") { account, _, _ in try account.charge(entry) }
            return
        }
        let database = clients.databaseName
        try await clients.withClient("record") { client in
            try MongoCollection.with(StoredAccount.usage, in: database, client: client) {
                try $0.insertOne(StoredAccount.usageDocument(entry, userID: userID))
            }
        }
    }

    /// How many due accounts one sweep visits.
    static let sweepBatch = 100

    /// Applies due expiries and archives settled entries of up to `limit` accounts that have something due;
    /// returns how many it visited. The reservation sweeper calls it every few seconds.
    @discardableResult
    func sweep(limit: Int = sweepBatch) async throws -> Int {
        let now = self.now
        let database = clients.databaseName
        let due: [String] = try await clients.withClient("sweep") { client in
            try MongoCollection.with(StoredAccount.accounts, in: database, client: client) { accounts in
                try accounts.find(["nextDeadline": ["$lte": .date(now)]], options: ["projection": ["_id": 1], "limit": .int64(Int64(limit))])
                    .compactMap { $0["_id"]?.stringValue }
            }
        }
        for userID in due {
            do {
                _ = try await account(userID)
            } catch {
                logger.warning("sweep could not update an account", metadata: ["user": "\(userID)", "error": "\(error)"])
            }
        }
        return due.count
    }

    // MARK: Compare-and-swap

    /// Applies `change` to `userID`'s account, after due expiries, as one compare-and-swap of its document,
    /// retried on a fresh copy while other writers get there first; then archives the settled entries.
    /// `change` may run several times, so it must depend only on its arguments.
    @discardableResult
    private func modify<T: Sendable>(
        _ userID: String, _ operation: String, archiving: Bool = true,
        _ change: @escaping @Sendable (inout Account, Date, ArchiveReader) throws -> T
    ) async throws -> (result: T, account: Account) {
        for attempt in 1...Self.maxAttempts {
            if let outcome = try await tryOnce(userID, operation, change) {
                if archiving, !outcome.account.settledEntries.isEmpty { await archive(outcome.account) }
                return outcome
            }
            // Another writer got there first: back off a little (more after each loss), then read again.
            try await Task.sleep(for: .microseconds(Int.random(in: 0...(200 * min(attempt, 25)))))
        }
        logger.warning("an account kept changing under every attempt", metadata: ["user": "\(userID)", "operation": "\(operation)"])
        throw AccountingErrors.busy
    }

    /// One try: nil when another writer changed (or created) the document after it was read.
    private func tryOnce<T: Sendable>(
        _ userID: String, _ operation: String, _ change: @escaping @Sendable (inout Account, Date, ArchiveReader) throws -> T
    ) async throws -> (result: T, account: Account)? {
        let database = clients.databaseName
        let now = self.now
        return try await clients.withClient(operation) { client in
            try MongoCollection.with(StoredAccount.accounts, in: database, client: client) { accounts in
                let stored = try accounts.find(["_id": .string(userID)], options: ["limit": 1]).first.map(StoredAccount.account)
                let original = stored ?? .empty(userID)
                var account = original
                _ = account.expire(at: now)
                let result = try change(&account, now, ArchiveReader(client: client, database: database, userID: userID))
                guard account != original else { return (result, account) }
                guard account.isConsistent else {
                    throw MongoDriverError(domain: 0, code: 0, message: "refused to write an account that breaks its invariants")
                }
                account.version = original.version + 1
                var fields = StoredAccount.fields(account, version: account.version, now: now)
                if stored == nil {
                    fields.pairs.insert((key: "_id", value: .string(userID)), at: 0)
                    do {
                        try accounts.insertOne(fields)
                    } catch let error as MongoDriverError where error.isDuplicateKey {
                        return nil
                    }
                } else {
                    let filter: BSONFields = ["_id": .string(userID), "version": .int64(Int64(original.version))]
                    guard try accounts.updateOne(filter, ["$set": .document(fields)]) == 1 else { return nil }
                }
                return (result, account)
            }
        }
    }

    /// Copies the account's settled entries to `usage` (an entry already there is left as it is), then
    /// removes them from the account. A failure is only logged: the entries stay due and the sweep retries.
    private func archive(_ account: Account) async {
        let entries = account.settledEntries
        let userID = account.userID
        let database = clients.databaseName
        do {
            try await clients.withClient("archive") { client in
                try MongoCollection.with(StoredAccount.usage, in: database, client: client) { usage in
                    for entry in entries {
                        do {
                            try usage.insertOne(StoredAccount.usageDocument(entry, userID: userID))
                        } catch let error as MongoDriverError where error.isDuplicateKey {}
                    }
                }
            }
            let ids = Set(entries.map(\.id))
            try await modify(userID, "prune", archiving: false) { account, _, _ in account.prune(ids) }
        } catch {
            logger.warning("settled entries could not be archived yet", metadata: ["user": "\(userID)", "error": "\(error)"])
        }
    }
}

/// Looks up one user's archived entries from inside a store operation, on its thread and client.
struct ArchiveReader {
    let client: OpaquePointer
    let database: String
    let userID: String

    /// The archived streaming session `sessionID`, if there is one.
    func stream(_ sessionID: String) throws -> LedgerEntry? {
        try MongoCollection.with(StoredAccount.usage, in: database, client: client) { usage in
            try usage.find(["userId": .string(userID), "kind": "stream", "sessionId": .string(sessionID)], options: ["limit": 1])
                .first.map(StoredAccount.archivedEntry)
        }
    }
}

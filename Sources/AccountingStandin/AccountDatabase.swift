import ChatCore
import ChatStore
import Foundation
import Logging
import NIOPosix
import Synchronization

/// One write the stand-in makes to its database.
enum StoreWrite: Sendable {
    /// Stores `account` (whose `version` is the new one) if the stored row is still at `expectedVersion`; with
    /// `expectedVersion` 0 there must be no row yet, and one is inserted.
    case account(Account, expectedVersion: Int, at: Date)
    /// Inserts the `usage` row of a settled entry or a usage record; one whose id is already there counts as
    /// written (the write is idempotent).
    case usage(LedgerEntry, userID: String)
}

/// What became of one write.
enum WriteOutcome: Sendable, Equatable {
    /// It is in the database, durably.
    case applied
    /// The account row was not at the expected version (or already existed): another writer got there first,
    /// and nothing was written.
    case conflict
}

/// How usage totals are grouped.
enum UsageGrouping: String, Sendable {
    case model = "model_id"
    case day = "day"
    case user = "user_id"
}

/// The stand-in's accounts and usage in one SQLite file (WAL mode, every commit synced to disk), used through
/// one connection on a thread of its own, never on an event loop.
///
/// Group commit: the writes that queue while the thread is busy go together, in one transaction and one sync,
/// so one lone request is written at once and under load each sync carries many. Reads run on the same
/// thread, after the writes queued with them are committed. Another process (or a test) may open the same
/// file: SQLite's locks keep their transactions apart, and an account row is only written if it is still at
/// the version the writer read (`StoreWrite.account`).
final class AccountDatabase: Sendable {
    /// A completion gets the write's outcome, or the error that failed its transaction.
    typealias Completion = @Sendable (Result<WriteOutcome, any Error>) -> Void

    private enum Job: Sendable {
        case write(StoreWrite, Completion)
        case read(@Sendable (SQLiteConnection?) -> Void)
    }

    private struct State: Sendable {
        var queue: [Job] = []
        var draining = false
    }

    /// The database file.
    let path: String
    private let thread: NIOThreadPool
    private let connection: ConnectionBox
    /// Statistics (sums over whole tables) on a connection and thread of their own: a long scan never holds up
    /// the writes, and WAL lets it read while they commit.
    private let statisticsThread: NIOThreadPool
    private let statisticsConnection: ConnectionBox
    /// Set once `shutdown` began.
    private let shutDown = Mutex(false)
    private let state = Mutex(State())
    private let logger: Logger

    /// Opens (creating it and its folder if needed) the database at `path`, in WAL mode with full syncs, and
    /// creates the tables and indexes that are missing.
    init(path: String, logger: Logger) throws {
        self.path = path
        self.logger = logger
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let connection = try SQLiteConnection(path: path)
        do {
            try connection.execute("PRAGMA busy_timeout = 10000")
            try connection.execute("PRAGMA journal_mode = WAL")
            try connection.execute("PRAGMA synchronous = FULL")
            try connection.execute(Self.schema)
        } catch {
            connection.close()
            throw error
        }
        let reader: SQLiteConnection
        do {
            reader = try SQLiteConnection(path: path)
            try reader.execute("PRAGMA busy_timeout = 10000")
        } catch {
            connection.close()
            throw error
        }
        self.connection = ConnectionBox(connection)
        statisticsConnection = ConnectionBox(reader)
        thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        statisticsThread = NIOThreadPool(numberOfThreads: 1)
        statisticsThread.start()
    }

    /// The tables: one row per account (its whole state as BSON, with the columns the sweep and the statistics
    /// need beside it) and one per archived entry.
    private static let schema = """
        CREATE TABLE IF NOT EXISTS accounts (
            user_id TEXT PRIMARY KEY, version INTEGER NOT NULL, available INTEGER NOT NULL, reserved INTEGER NOT NULL,
            next_deadline INTEGER NOT NULL, document BLOB NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS accounts_next_deadline ON accounts (next_deadline);
        CREATE TABLE IF NOT EXISTS usage (
            id TEXT PRIMARY KEY, user_id TEXT NOT NULL, session_id TEXT, kind TEXT NOT NULL, status TEXT NOT NULL,
            model_id TEXT NOT NULL, day TEXT NOT NULL, credits INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL, tokens INTEGER NOT NULL, settled_at INTEGER NOT NULL, document BLOB NOT NULL
        );
        CREATE INDEX IF NOT EXISTS usage_user_session ON usage (user_id, session_id);
        CREATE INDEX IF NOT EXISTS usage_user_settled ON usage (user_id, settled_at);
        """

    // MARK: Writes

    /// Writes `write` with whatever else is waiting and returns its outcome once it is synced to disk. Throws
    /// when its transaction failed (then nothing of it was written).
    func commit(_ write: StoreWrite) async throws -> WriteOutcome {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(write) { continuation.resume(with: $0) }
        }
    }

    /// Queues `write` without waiting; `completion` runs once its transaction is committed or failed.
    func enqueue(_ write: StoreWrite, completion: @escaping Completion) {
        submit(.write(write, completion))
    }

    /// Returns once every write queued before this call has completed.
    func flush() async {
        await withCheckedContinuation { continuation in
            submit(.read { _ in continuation.resume() })
        }
    }

    /// How many calls wait for the database's thread now (for tests).
    var queuedJobs: Int { state.withLock { $0.queue.count } }

    // MARK: Reads

    /// The stored account of `userID`, if there is one.
    func account(_ userID: String) async throws -> Account? {
        try await read { try Self.account(userID, on: $0) }
    }

    /// The stored account of `userID` and the session ids archived for them (those settled at `since` or
    /// later, when given), in one visit to the database.
    func load(_ userID: String, sessionsSettledSince since: Date?) async throws -> (Account?, [String]) {
        try await read { connection in
            let account = try Self.account(userID, on: connection)
            let sessions: [String]
            if let since {
                sessions = try connection.rows(
                    "SELECT session_id FROM usage WHERE user_id = ? AND settled_at >= ? AND session_id IS NOT NULL",
                    [.text(userID), .integer(Self.milliseconds(since))]
                ) { $0.text(0) ?? "" }
            } else {
                sessions = try connection.rows("SELECT session_id FROM usage WHERE user_id = ? AND session_id IS NOT NULL", [.text(userID)]) {
                    $0.text(0) ?? ""
                }
            }
            return (account, sessions)
        }
    }

    /// The archived entry of `userID`'s session `sessionID`, if there is one.
    func archivedEntry(userID: String, sessionID: String) async throws -> LedgerEntry? {
        try await read { connection in
            try connection.rows("SELECT document FROM usage WHERE user_id = ? AND session_id = ? LIMIT 1", [.text(userID), .text(sessionID)]) {
                try StoredAccount.archivedEntry(BSONCodec.decode($0.blob(0)))
            }.first
        }
    }

    /// Up to `limit` users whose account has something due at `now` (a reservation or an allocation expiring).
    func dueAccounts(at now: Date, limit: Int) async throws -> [String] {
        try await read { connection in
            try connection.rows(
                "SELECT user_id FROM accounts WHERE next_deadline <= ? LIMIT ?", [.integer(Self.milliseconds(now)), .integer(Int64(limit))]
            ) { $0.text(0) ?? "" }
        }
    }

    /// Credits, tokens and requests of finalized usage (of `userID`, else everyone's), grouped by `grouping`.
    func usageTotals(userID: String?, by grouping: UsageGrouping) async throws -> [(key: String, totals: UsageStats.Totals)] {
        let column = grouping.rawValue
        let sums = "SELECT \(column), SUM(credits), SUM(input_tokens), SUM(output_tokens), SUM(tokens), COUNT(*) FROM usage WHERE status = 'finalized'"
        let sql = userID == nil ? "\(sums) GROUP BY \(column)" : "\(sums) AND user_id = ? GROUP BY \(column)"
        return try await readStatistics { connection in
            try connection.rows(sql, userID.map { [.text($0)] } ?? []) { row in
                let totals = UsageStats.Totals(
                    credits: Int(row.integer(1)), inputTokens: Int(row.integer(2)), outputTokens: Int(row.integer(3)),
                    tokens: Int(row.integer(4)), requests: Int(row.integer(5))
                )
                return (key: row.text(0) ?? "unspecified", totals: totals)
            }
        }
    }

    /// How many accounts there are and the credits available and held across them (as of their last write).
    func balances() async throws -> (accounts: Int, available: Int, reserved: Int) {
        try await readStatistics { connection in
            try connection.rows("SELECT COUNT(*), COALESCE(SUM(available), 0), COALESCE(SUM(reserved), 0) FROM accounts") {
                (Int($0.integer(0)), Int($0.integer(1)), Int($0.integer(2)))
            }.first ?? (0, 0, 0)
        }
    }

    /// Succeeds when the database answers a query.
    func ping() async throws {
        try await read { connection in _ = try connection.rows("SELECT 1") { $0.integer(0) } }
    }

    /// Runs `body` on the database's thread, after the writes queued before it.
    func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit(.read { connection in
                guard let connection else { return continuation.resume(throwing: Self.closed) }
                continuation.resume(with: Result { try body(connection) })
            })
        }
    }

    /// Runs `body` on the statistics connection's thread: it sees every write committed before it starts.
    func readStatistics<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        let box = statisticsConnection
        do {
            return try await statisticsThread.runIfActive {
                guard let connection = box.open else { throw Self.closed }
                return try body(connection)
            }
        } catch where shutDown.withLock({ $0 }) {
            throw Self.closed  // the thread stopped (NIO reports that as a cancellation)
        }
    }

    // MARK: Closing

    /// Finishes what is queued, then closes the connection and stops the thread; later calls throw. Calling it
    /// again does nothing.
    func shutdown() async throws {
        shutDown.withLock { $0 = true }
        await flush()
        do {
            try await read { connection in connection.close() }
        } catch let error as ChatError where error.code == Self.closed.code {
            return  // already shut down
        }
        try await thread.shutdownGracefully()
        let box = statisticsConnection
        _ = try? await statisticsThread.runIfActive { box.open?.close() }
        try await statisticsThread.shutdownGracefully()
    }

    // MARK: The database's thread

    private func submit(_ job: Job) {
        let start = state.withLock { state in
            state.queue.append(job)
            guard !state.draining else { return false }
            state.draining = true
            return true
        }
        guard start else { return }
        thread.submit { [self] poolState in
            guard case .active = poolState else {
                // The thread has stopped (the database was shut down): what is queued, and whatever comes
                // later, fails at once.
                let jobs = state.withLock { state in
                    defer {
                        state.queue = []
                        state.draining = false
                    }
                    return state.queue
                }
                for job in jobs { Self.fail(job, Self.closed) }
                return
            }
            drain()
        }
    }

    /// Runs every queued job, batch after batch, until the queue is empty.
    private func drain() {
        while true {
            let batch: [Job] = state.withLock { state in
                guard !state.queue.isEmpty else {
                    state.draining = false
                    return []
                }
                defer { state.queue.removeAll(keepingCapacity: true) }
                return state.queue
            }
            guard !batch.isEmpty else { return }
            run(batch)
        }
    }

    /// The batch's writes in one transaction, then its reads.
    private func run(_ batch: [Job]) {
        let connection = connection.open
        var writes: [(StoreWrite, Completion)] = []
        for job in batch { if case .write(let write, let completion) = job { writes.append((write, completion)) } }
        if !writes.isEmpty {
            guard let connection else {
                for (_, completion) in writes { completion(.failure(Self.closed)) }
                return runReads(batch, on: nil)
            }
            let outcomes = commit(writes.map(\.0), on: connection)
            for ((_, completion), outcome) in zip(writes, outcomes) { completion(outcome) }
        }
        runReads(batch, on: connection)
    }

    private func runReads(_ batch: [Job], on connection: SQLiteConnection?) {
        for job in batch { if case .read(let body) = job { body(connection) } }
    }

    /// Applies `writes` in one transaction, each within a savepoint of its own: a write that fails is undone
    /// alone and gets its error, the others are committed. If the transaction itself fails (it cannot begin or
    /// commit, or SQLite ended it), none of them is written and each gets the error.
    private func commit(_ writes: [StoreWrite], on connection: SQLiteConnection) -> [Result<WriteOutcome, any Error>] {
        do {
            try connection.execute("BEGIN IMMEDIATE")
            var outcomes: [Result<WriteOutcome, any Error>] = []
            outcomes.reserveCapacity(writes.count)
            for write in writes {
                try connection.execute("SAVEPOINT write")
                do {
                    let outcome = try apply(write, on: connection)
                    try connection.execute("RELEASE write")
                    outcomes.append(.success(outcome))
                } catch {
                    guard connection.inTransaction else { throw error }
                    try connection.execute("ROLLBACK TO write; RELEASE write")
                    logger.error("a write was refused; the others of its transaction go on", metadata: ["error": "\(error)"])
                    outcomes.append(.failure(ChatError(.internal, code: "DATABASE_ERROR", message: "The accounting database refused the write")))
                }
            }
            try connection.execute("COMMIT")
            return outcomes
        } catch {
            if connection.inTransaction { try? connection.execute("ROLLBACK") }
            logger.error("a database transaction failed; none of its writes was made", metadata: ["error": "\(error)", "writes": "\(writes.count)"])
            let failure = ChatError(.unavailable, code: "DATABASE_UNAVAILABLE", message: "The accounting database could not complete the request")
            return Array(repeating: .failure(failure), count: writes.count)
        }
    }

    private func apply(_ write: StoreWrite, on connection: SQLiteConnection) throws -> WriteOutcome {
        switch write {
        case .account(let account, let expectedVersion, let now):
            var document: BSONFields = ["_id": .string(account.userID)]
            for (key, value) in StoredAccount.fields(account, version: account.version, now: now).pairs { document.append(key, value) }
            let columns: [SQLiteValue] = [
                .integer(Int64(account.version)), .integer(Int64(account.available)), .integer(Int64(account.reserved)),
                .integer(Self.milliseconds(account.nextDeadline ?? StoredAccount.never)), .blob(try BSONCodec.encode(document)),
            ]
            let changed: Int
            if expectedVersion == 0 {
                changed = try connection.run(
                    """
                    INSERT INTO accounts (version, available, reserved, next_deadline, document, user_id) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (user_id) DO NOTHING
                    """,
                    columns + [.text(account.userID)]
                )
            } else {
                changed = try connection.run(
                    "UPDATE accounts SET version = ?, available = ?, reserved = ?, next_deadline = ?, document = ? WHERE user_id = ? AND version = ?",
                    columns + [.text(account.userID), .integer(Int64(expectedVersion))]
                )
            }
            return changed == 1 ? .applied : .conflict
        case .usage(let entry, let userID):
            let document = StoredAccount.usageDocument(entry, userID: userID)
            let fields = StoredFields(document, in: StoredAccount.usage)
            try connection.run(
                """
                INSERT INTO usage (id, user_id, session_id, kind, status, model_id, day, credits, input_tokens, output_tokens, tokens,
                settled_at, document) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING
                """,
                [
                    .text(entry.id), .text(userID), entry.sessionID.map { .text($0) } ?? .null, .text(entry.kind.rawValue),
                    .text(entry.status.rawValue), .text(fields.optionalString("modelId") ?? "unspecified"),
                    .text(fields.optionalString("day") ?? ""), .integer(Int64(fields.optionalInt("credits") ?? 0)),
                    .integer(Int64(fields.optionalInt("inputTokens") ?? 0)), .integer(Int64(fields.optionalInt("outputTokens") ?? 0)),
                    .integer(Int64(fields.optionalInt("tokens") ?? 0)),
                    .integer(Self.milliseconds(entry.settlement?.settledAt ?? entry.createdAt)), .blob(try BSONCodec.encode(document)),
                ]
            )
            return .applied
        }
    }

    /// The stored account, at the version of its row (what the conditional writes compare).
    private static func account(_ userID: String, on connection: SQLiteConnection) throws -> Account? {
        try connection.rows("SELECT version, document FROM accounts WHERE user_id = ?", [.text(userID)]) { row in
            var account = try StoredAccount.account(BSONCodec.decode(row.blob(1)))
            account.version = Int(row.integer(0))
            return account
        }.first
    }

    private static func fail(_ job: Job, _ error: any Error) {
        switch job {
        case .write(_, let completion): completion(.failure(error))
        case .read(let body): body(nil)
        }
    }

    /// Milliseconds since 1970, as the rows keep dates.
    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }

    private static let closed = ChatError(.unavailable, code: "DATABASE_CLOSED", message: "The accounting database is closed")
}

/// The connection, used only by the database's one thread (`AccountDatabase.drain` runs one batch at a time),
/// which is what makes this box safe to share.
private final class ConnectionBox: @unchecked Sendable {
    private var connection: SQLiteConnection?

    init(_ connection: SQLiteConnection) { self.connection = connection }

    /// The connection until it is closed.
    var open: SQLiteConnection? {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        return nil
    }
}

import ChatCore
import ChatStore
import Logging
import Synchronization

/// One write the stand-in makes to MongoDB.
enum StoreWrite: Sendable {
    /// Replaces the user's account document with `fields` if it is still at `expectedVersion`; with
    /// `expectedVersion` 0 the document must not exist yet and is inserted.
    case account(userID: String, expectedVersion: Int, fields: BSONFields)
    /// Inserts a `usage` document; one whose `_id` is already there counts as written (the write is idempotent).
    case usage(BSONFields)
}

/// What became of one write.
enum WriteOutcome: Sendable, Equatable {
    /// It is in MongoDB, acknowledged.
    case applied
    /// The account document was not at the expected version (or already existed): another writer got there
    /// first, and nothing was written.
    case conflict
}

/// Group commit: the writes of concurrent requests (different users' account changes, usage archives) go to
/// MongoDB together: per batch, ONE `bulkWrite` command (MongoDB 8.0+, SecantusDB) for the account writes and
/// one `insert` for the usage documents, in one round trip each.
///
/// A write waits only while `maxInFlight` batches are already on their way; then it goes with everything that
/// queued meanwhile (up to `maxBatch` writes). So one lone request is written at once, and under load each
/// round trip carries many. `bulkWrite` is unordered and reports every write's own result (`errorsOnly: false`),
/// so each account update learns whether its version still matched; the writes of one batch are independent
/// (at most one per account: each user's changes are serialized before they get here). The blocking driver
/// call runs on the `MongoClientPool`'s thread pool.
final class GroupCommitter: Sendable {
    /// A completion gets every write's own outcome, or the error that failed it.
    typealias Completion = @Sendable (Result<WriteOutcome, any Error>) -> Void

    private struct Waiting: Sendable {
        let sequence: Int
        let write: StoreWrite
        let completion: Completion
    }

    private struct State {
        var queue: [Waiting] = []
        var inFlight = 0
        var nextSequence = 0
        /// Sequence numbers enqueued and not yet completed.
        var unfinished: Set<Int> = []
        /// `flush()` callers, each waiting for everything enqueued before its call.
        var flushes: [(upTo: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    /// The most writes one `bulkWrite` carries.
    let maxBatch: Int
    /// The most batches on their way at once.
    let maxInFlight: Int
    private let clients: MongoClientPool
    private let accountsNamespace: String
    private let usageNamespace: String
    private let logger: Logger
    private let state = Mutex(State())

    /// A committer writing to the `accounts` and `usage` collections of `clients`' database.
    init(clients: MongoClientPool, maxBatch: Int = 256, maxInFlight: Int, logger: Logger) {
        self.clients = clients
        self.maxBatch = max(1, maxBatch)
        self.maxInFlight = max(1, maxInFlight)
        accountsNamespace = clients.databaseName + "." + StoredAccount.accounts
        usageNamespace = clients.databaseName + "." + StoredAccount.usage
        self.logger = logger
    }

    /// Writes `write` with whatever else is waiting and returns its outcome once MongoDB acknowledged it.
    /// Throws when the batch failed as a whole (MongoDB unreachable: its outcome is then unknown) or this write
    /// was refused for another reason than a version conflict.
    func commit(_ write: StoreWrite) async throws -> WriteOutcome {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(write) { continuation.resume(with: $0) }
        }
    }

    /// Queues `write` without waiting; `completion` runs once its batch is answered.
    func enqueue(_ write: StoreWrite, completion: @escaping Completion) {
        let batch: [Waiting]? = state.withLock { state in
            let sequence = state.nextSequence
            state.nextSequence += 1
            state.unfinished.insert(sequence)
            state.queue.append(Waiting(sequence: sequence, write: write, completion: completion))
            guard state.inFlight < maxInFlight else { return nil }
            state.inFlight += 1
            return Self.take(&state.queue, maxBatch)
        }
        if let batch { Task { await self.drain(from: batch) } }
    }

    /// Returns once every write enqueued before this call has completed.
    func flush() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                let upTo = state.nextSequence - 1
                if state.unfinished.allSatisfy({ $0 > upTo }) { return true }
                state.flushes.append((upTo, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: Batches

    private static func take(_ queue: inout [Waiting], _ count: Int) -> [Waiting] {
        let batch = Array(queue.prefix(count))
        queue.removeFirst(batch.count)
        return batch
    }

    /// Sends `batch`, then keeps sending what queued meanwhile until the queue is empty.
    private func drain(from batch: [Waiting]) async {
        var batch = batch
        while true {
            let outcomes = await send(batch)
            for (waiting, outcome) in zip(batch, outcomes) { waiting.completion(outcome) }
            let (next, flushed): ([Waiting]?, [CheckedContinuation<Void, Never>]) = state.withLock { state in
                for waiting in batch { state.unfinished.remove(waiting.sequence) }
                var flushed: [CheckedContinuation<Void, Never>] = []
                if !state.flushes.isEmpty {
                    let lowest = state.unfinished.min() ?? Int.max
                    flushed = state.flushes.filter { $0.upTo < lowest }.map(\.continuation)
                    state.flushes.removeAll { $0.upTo < lowest }
                }
                guard !state.queue.isEmpty else {
                    state.inFlight -= 1
                    return (nil, flushed)
                }
                return (Self.take(&state.queue, maxBatch), flushed)
            }
            for continuation in flushed { continuation.resume() }
            guard let next else { return }
            batch = next
        }
    }

    /// Sends `batch`: the account writes as one `bulkWrite` (each reports its own result), the usage documents
    /// as one unordered `insert` (SecantusDB commits a multi-document insert as one transaction, a `bulkWrite`
    /// insert as one each); an outcome per write, in order.
    private func send(_ batch: [Waiting]) async -> [Result<WriteOutcome, any Error>] {
        var operations: [BSONValue] = []
        var documents: [BSONValue] = []
        for waiting in batch {
            switch waiting.write {
            case .account(let userID, 0, let fields):
                var document = fields
                document.pairs.insert((key: "_id", value: .string(userID)), at: 0)
                operations.append(["insert": 0, "document": .document(document)])
            case .account(let userID, let version, let fields):
                operations.append([
                    "update": 0, "filter": ["_id": .string(userID), "version": .int64(Int64(version))],
                    "updateMods": ["$set": .document(fields)], "multi": false,
                ])
            case .usage(let document):
                documents.append(.document(document))
            }
        }
        let bulkWrite: BSONFields? =
            operations.isEmpty
            ? nil
            : ["bulkWrite": 1, "ops": .array(operations), "nsInfo": [["ns": .string(accountsNamespace)]], "ordered": false, "errorsOnly": false]
        let insert: BSONFields? =
            documents.isEmpty ? nil : ["insert": .string(StoredAccount.usage), "documents": .array(documents), "ordered": false]
        let database = clients.databaseName
        let (accountCount, usageCount) = (operations.count, documents.count)
        // The two commands succeed or fail apart: a failed usage insert must not report applied account writes
        // as failed (their callers would retry changes that were made).
        let accountResults: Result<[BulkResult], any Error>
        let usageResults: Result<[BulkResult], any Error>
        do {
            (accountResults, usageResults) = try await clients.withClient("bulkWrite") { client in
                let accounts = Result {
                    try bulkWrite.map { try Self.results(ofBulkWrite: runWriteCommand($0, database: "admin", client: client), count: accountCount) } ?? []
                }
                let usage = Result {
                    try insert.map { InsertResult.each(of: try runWriteCommand($0, database: database, client: client), count: usageCount).map(BulkResult.init) } ?? []
                }
                return (accounts, usage)
            }
        } catch {
            return Array(repeating: .failure(error), count: batch.count)
        }
        var nextAccount = ((try? accountResults.get()) ?? []).makeIterator()
        var nextUsage = ((try? usageResults.get()) ?? []).makeIterator()
        return batch.map { waiting in
            let write = waiting.write
            let result: BulkResult
            if case .usage = write {
                if case .failure(let error) = usageResults { return .failure(error) }
                result = nextUsage.next() ?? .failed(code: 0, message: "")
            } else {
                if case .failure(let error) = accountResults { return .failure(error) }
                result = nextAccount.next() ?? .failed(code: 0, message: "")
            }
            switch (write, result) {
            case (.account(_, 0, _), .written), (.account, .written(1)), (.usage, .written), (.usage, .duplicateKey):
                return .success(.applied)
            case (.account, .written), (.account, .duplicateKey):
                return .success(.conflict)
            case (_, .failed(let code, let message)):
                logger.error("MongoDB refused a write", metadata: ["code": "\(code)", "error": "\(message)"])
                return .failure(ChatError(.internal, code: "DATABASE_ERROR", message: "The database could not complete the request"))
            }
        }
    }

    /// One write's result as `bulkWrite` reported it.
    private enum BulkResult: Sendable {
        /// Done; `n` documents matched (an update) or were inserted.
        case written(Int)
        /// E11000: the `_id` is taken.
        case duplicateKey
        /// Any other error.
        case failed(code: Int, message: String)

        /// An insert's result as a write's.
        init(_ insert: InsertResult) {
            switch insert {
            case .inserted: self = .written(1)
            case .duplicateKey: self = .duplicateKey
            case .failed(let code, let message): self = .failed(code: code, message: message)
            }
        }
    }

    /// Every write's result from a `bulkWrite` reply (a cursor whose first batch holds them all: no batch size
    /// is asked for, and these results are far below 16 MB); one missing is a failure.
    private static func results(ofBulkWrite reply: BSONFields, count: Int) throws -> [BulkResult] {
        guard let cursor = reply["cursor"]?.documentValue, let entries = cursor["firstBatch"]?.arrayValue else {
            throw MongoDriverError(domain: 0, code: 0, message: "a bulkWrite reply had no cursor")
        }
        var results = [BulkResult](repeating: .failed(code: 0, message: "bulkWrite reported nothing for this write"), count: count)
        for entry in entries {
            guard let fields = entry.documentValue, let index = fields["idx"]?.intValue, results.indices.contains(index) else { continue }
            if fields["ok"]?.intValue == 1 {
                results[index] = .written(fields["n"]?.intValue ?? 0)
            } else {
                results[index] = failure(fields)
            }
        }
        return results
    }

    /// A reported error: E11000 (the `_id` is taken) or another.
    private static func failure(_ fields: BSONFields) -> BulkResult {
        BulkResult(InsertResult.failure(fields))
    }
}

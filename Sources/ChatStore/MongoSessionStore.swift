@preconcurrency import CMongoc
import ChatCore
import Foundation
import Logging

/// Sessions and messages in MongoDB (collections `sessions` and `messages`), over libmongoc.
///
/// Every call runs on the store's own thread pool and fails with `DATABASE_UNAVAILABLE` within
/// the configured timeout when MongoDB cannot be reached; the next call after it comes back works.
public final class MongoSessionStore: SessionStore {
    private let clients: MongoClientPool
    /// Turns stored together: one `insert` and one `update` command for every turn that queued meanwhile.
    private let turns: GroupCommit<TurnWrite, [ChatMessage]>

    /// Starts the store's threads; connects on first use, so MongoDB need not be up yet. Throws on a bad configuration.
    public init(configuration: MongoConfiguration, logger: Logger = Logger(label: "ChatStore")) throws {
        let clients = try MongoClientPool(configuration: configuration, logger: logger)
        self.clients = clients
        // A batch stays far below MongoDB's 16 MiB command limit (a turn bigger than the cap goes alone, as one
        // turn always did), and two batches may be on their way, so a slow one does not hold up everyone.
        turns = GroupCommit(maxWeight: 8 << 20, maxInFlight: 2, weigh: \.weight) { batch in await Self.write(batch, clients: clients) }
    }

    /// The database this store uses (from the URI's path, `chat` by default).
    public var databaseName: String { clients.databaseName }

    /// Creates the indexes the queries need (idempotent): call once at start, before serving.
    public func prepare() async throws {
        let database = clients.databaseName
        try await clients.withClient("createIndexes", retry: .idempotent) { client in
            try MongoCollection.with(StoredSession.collection, in: database, client: client) { sessions in
                try sessions.writeCommand([
                    "createIndexes": .string(StoredSession.collection),
                    "indexes": [["key": ["userId": 1, "updatedAt": -1], "name": "userId_1_updatedAt_-1"]],
                ])
            }
            try MongoCollection.with(StoredMessage.collection, in: database, client: client) { messages in
                try messages.writeCommand([
                    "createIndexes": .string(StoredMessage.collection),
                    "indexes": [
                        // Pages of messages are read newest first by (createdAt, _id): the index holds both.
                        ["key": ["sessionId": 1, "createdAt": 1, "_id": 1], "name": "sessionId_1_createdAt_1__id_1"],
                        ["key": ["jobId": 1, "role": 1], "name": "jobId_1_role_1", "unique": true],
                    ],
                ])
            }
        }
    }

    /// Stops the threads and closes the connections; every later call fails with `DATABASE_UNAVAILABLE`.
    public func shutdown() async throws {
        try await clients.shutdown()
    }

    /// Succeeds when MongoDB answers `ping` within the configured timeout.
    public func ping() async throws {
        try await clients.withClient("ping", retry: .idempotent) { client in
            _ = try runCommand(["ping": 1], database: "admin", client: client)
        }
    }

    /// Creates a session with a new ObjectId, no messages, and `createdAt == updatedAt == now`.
    public func createSession(userId: String, title: String, modelId: String?, systemPrompt: String?) async throws -> ChatSession {
        let now = storedNow()
        let session = ChatSession(
            id: Self.newObjectID(), userId: userId, title: title, modelId: modelId, createdAt: now, updatedAt: now, messageCount: 0,
            systemPrompt: systemPrompt
        )
        let document = StoredSession.document(session)
        let database = clients.databaseName
        try await clients.withClient("createSession", retry: .ifNotSent) { client in
            try MongoCollection.with(StoredSession.collection, in: database, client: client) { try $0.insertOne(document) }
        }
        return session
    }

    /// One page (1-based; a page below 1 is page 1, a limit below 1 is 1) of the user's sessions,
    /// most recently updated first, with the user's total.
    public func listSessions(userId: String, page: Int, limit: Int) async throws -> SessionPage {
        let limit = max(1, limit)
        let skip = (max(1, page) - 1).multipliedReportingOverflow(by: limit)
        let filter: BSONFields = ["userId": .string(userId)]
        let options: BSONFields = [
            "sort": ["updatedAt": -1, "_id": -1],
            "skip": .int64(Int64(skip.overflow ? Int.max : skip.partialValue)),
            "limit": .int64(Int64(limit)),
        ]
        let database = clients.databaseName
        return try await clients.withClient("listSessions", retry: .idempotent) { client in
            try MongoCollection.with(StoredSession.collection, in: database, client: client) { sessions in
                let found = try sessions.find(filter, options: options).map(StoredSession.session)
                return SessionPage(sessions: found, total: try sessions.count(filter))
            }
        }
    }

    /// The session if `id` names one of `userId`'s sessions; nil otherwise (a malformed id without asking MongoDB).
    public func session(id: String, userId: String) async throws -> ChatSession? {
        guard SessionID.isValid(id) else { return nil }
        return try await findSession(["_id": .objectID(id), "userId": .string(userId)])
    }

    /// The session whatever its owner; nil if there is none (a malformed id without asking MongoDB).
    public func session(id: String) async throws -> ChatSession? {
        guard SessionID.isValid(id) else { return nil }
        return try await findSession(["_id": .objectID(id)])
    }

    private func findSession(_ filter: BSONFields) async throws -> ChatSession? {
        let database = clients.databaseName
        return try await clients.withClient("findSession", retry: .idempotent) { client in
            try MongoCollection.with(StoredSession.collection, in: database, client: client) { sessions in
                try sessions.find(filter, options: ["limit": 1]).first.map(StoredSession.session)
            }
        }
    }

    /// The newest `limit` messages of the session before `before` (in time, ties by id, i.e. by insertion),
    /// oldest first; empty for a malformed id.
    public func messages(sessionId: String, before: MessageCursor?, limit: Int) async throws -> [ChatMessage] {
        guard SessionID.isValid(sessionId), limit > 0 else { return [] }
        var filter: BSONFields = ["sessionId": .objectID(sessionId)]
        if let before, SessionID.isValid(before.id) {
            filter.append(
                "$or",
                .array([
                    .document(["createdAt": ["$lt": .date(before.createdAt)]]),
                    .document(["createdAt": .date(before.createdAt), "_id": ["$lt": .objectID(before.id)]]),
                ])
            )
        }
        let options: BSONFields = ["sort": ["createdAt": -1, "_id": -1], "limit": .int64(Int64(limit))]
        let database = clients.databaseName
        return try await clients.withClient("messages", retry: .idempotent) { [filter] client in
            try MongoCollection.with(StoredMessage.collection, in: database, client: client) { messages in
                try messages.find(filter, options: options).map(StoredMessage.message).reversed()
            }
        }
    }

    /// Deletes the user's session, then all its messages; false (and nothing deleted) if it is not theirs.
    public func deleteSession(id: String, userId: String) async throws -> Bool {
        guard SessionID.isValid(id) else { return false }
        let database = clients.databaseName
        return try await clients.withClient("deleteSession") { client in
            let deleted = try MongoCollection.with(StoredSession.collection, in: database, client: client) {
                try $0.deleteOne(["_id": .objectID(id), "userId": .string(userId)])
            }
            guard deleted > 0 else { return false }
            // The session goes first: an append racing with this delete then finds no session and
            // removes its own message (see appendMessage), so no orphan survives either order.
            _ = try MongoCollection.with(StoredMessage.collection, in: database, client: client) {
                try $0.deleteMany(["sessionId": .objectID(id)])
            }
            return true
        }
    }

    /// Appends the messages of one turn, each once per (jobId, role) (the unique index refuses a repeat, which
    /// then reads back the message stored first), and bumps the session's `updatedAt`, `messageCount` and
    /// `contentBytes` once for those newly stored. Throws `SESSION_NOT_FOUND` (storing nothing) when the session
    /// does not exist; every message must belong to the same session. Turns that arrive together are stored
    /// together (`GroupCommit`): one unordered `insert` for all their messages and one `update` command for all
    /// their sessions' counters.
    public func appendMessages(_ messages: [NewMessage]) async throws -> [ChatMessage] {
        guard let sessionId = messages.first?.sessionId else { return [] }
        guard messages.allSatisfy({ $0.sessionId == sessionId }) else {
            throw ChatError(.internal, code: "DATABASE_ERROR", message: "The messages of one turn belong to one session")
        }
        guard SessionID.isValid(sessionId) else { throw Self.sessionNotFound }
        let now = storedNow()
        let documents = messages.map { StoredMessage.document($0, id: $0.id ?? Self.newObjectID(), createdAt: $0.createdAt ?? now) }
        return try await turns.submit(TurnWrite(sessionId: sessionId, messages: messages, documents: documents, now: now))
    }

    /// How many batches of turns were written (each one `insert` and at most one `update`), for tests.
    package var turnBatchesWritten: Int { turns.batchesWritten }

    /// One turn on its way to MongoDB.
    struct TurnWrite: Sendable {
        var sessionId: String
        var messages: [NewMessage]
        var documents: [BSONFields]
        var now: Date

        /// About what the turn adds to a command, in bytes: its texts and each document's other fields.
        var weight: Int { messages.reduce(0) { $0 + $1.content.utf8.count + 512 } }
    }

    /// Stores a batch of turns: one insert for every message, a read-back for each repeat, then one `update`
    /// command bumping the counters of the sessions that got new messages. A turn whose session is gone gets its
    /// new messages taken out again and `SESSION_NOT_FOUND`; a failed command fails every turn of the batch.
    private static func write(_ batch: [TurnWrite], clients: MongoClientPool) async -> [Result<[ChatMessage], any Error>] {
        let database = clients.databaseName
        do {
            return try await clients.withClient("appendMessages") { client in
                let documents = batch.flatMap(\.documents)
                let insert: BSONFields = [
                    "insert": .string(StoredMessage.collection), "documents": .array(documents.map(BSONValue.document)), "ordered": false,
                ]
                let results = InsertResult.each(of: try runWriteCommand(insert, database: database, client: client), count: documents.count)
                var outcomes: [Result<[ChatMessage], any Error>] = []
                var inserted: [[ChatMessage]] = []
                var offset = 0
                for turn in batch {
                    let mine = Array(results[offset..<offset + turn.documents.count])
                    offset += turn.documents.count
                    do {
                        let (stored, new) = try stored(turn, mine, database: database, client: client)
                        outcomes.append(.success(stored))
                        inserted.append(new)
                    } catch {
                        outcomes.append(.failure(error))
                        inserted.append([])
                    }
                }
                try bumpCounters(batch, inserted: inserted, outcomes: &outcomes, database: database, client: client)
                return outcomes
            }
        } catch {
            return Array(repeating: .failure(error), count: batch.count)
        }
    }

    /// The stored messages of one turn from its insert results (a repeat read back), and those newly inserted.
    private static func stored(
        _ turn: TurnWrite, _ results: [InsertResult], database: String, client: OpaquePointer
    ) throws -> (stored: [ChatMessage], inserted: [ChatMessage]) {
        var stored: [ChatMessage] = []
        var inserted: [ChatMessage] = []
        for (index, result) in results.enumerated() {
            switch result {
            case .inserted:
                let message = try StoredMessage.message(turn.documents[index])
                stored.append(message)
                inserted.append(message)
            case .duplicateKey:
                // Stored before (an earlier attempt of the job, or a racing one): that one stands.
                let query: BSONFields = ["jobId": .string(turn.messages[index].jobId), "role": .string(turn.messages[index].role.rawValue)]
                let first = try MongoCollection.with(StoredMessage.collection, in: database, client: client) {
                    try $0.find(query, options: ["limit": 1]).first
                }
                guard let first else { throw MongoDriverError(domain: 0, code: 11000, message: "a duplicate message could not be read back") }
                stored.append(try StoredMessage.message(first))
            case .failed(let code, let message):
                throw MongoDriverError(domain: 0, code: UInt32(clamping: code), message: message)
            }
        }
        return (stored, inserted)
    }

    /// One `update` command with a statement per turn that inserted messages (tried twice if it fails as a
    /// whole). A statement MongoDB refused fails its own turn only; if fewer sessions matched than statements
    /// were sent, the turns whose session is gone get their messages taken out and `SESSION_NOT_FOUND`.
    private static func bumpCounters(
        _ batch: [TurnWrite], inserted: [[ChatMessage]], outcomes: inout [Result<[ChatMessage], any Error>], database: String,
        client: OpaquePointer
    ) throws {
        let bumped = batch.indices.filter { !inserted[$0].isEmpty }
        guard !bumped.isEmpty else { return }
        let statements: [BSONValue] = bumped.map { index in
            let bytes = inserted[index].reduce(0) { $0 + $1.content.utf8.count }
            return [
                "q": ["_id": .objectID(batch[index].sessionId)],
                "u": [
                    "$max": ["updatedAt": .date(batch[index].now)],
                    "$inc": ["messageCount": .int64(Int64(inserted[index].count)), "contentBytes": .int64(Int64(bytes))],
                ],
            ]
        }
        let command: BSONFields = ["update": .string(StoredSession.collection), "updates": .array(statements), "ordered": false]
        let reply: BSONFields
        do {
            reply = try runWriteCommand(command, database: database, client: client)
        } catch {
            do {
                reply = try runWriteCommand(command, database: database, client: client)
            } catch {
                // The messages are stored and their counters are not: those turns fail (a retry finds the messages).
                for index in bumped { outcomes[index] = .failure(error) }
                return
            }
        }
        var refused: [Int: any Error] = [:]
        for entry in reply["writeErrors"]?.arrayValue ?? [] {
            guard let fields = entry.documentValue, let position = fields["index"]?.intValue, bumped.indices.contains(position) else { continue }
            refused[bumped[position]] = MongoDriverError(
                domain: 0, code: UInt32(clamping: fields["code"]?.intValue ?? 0), message: fields["errmsg"]?.stringValue ?? ""
            )
        }
        for (index, error) in refused { outcomes[index] = .failure(error) }
        guard (reply["n"]?.intValue ?? 0) < statements.count - refused.count else { return }
        // Some session is gone (deleted meanwhile, or never was): find which, and take their messages back out.
        let ids = Array(Set(bumped.map { batch[$0].sessionId }))
        let present = try MongoCollection.with(StoredSession.collection, in: database, client: client) {
            try $0.find(["_id": ["$in": .array(ids.map(BSONValue.objectID))]], options: ["projection": ["_id": 1]])
        }
        let existing = Set(present.compactMap { $0["_id"]?.objectIDValue })
        for index in bumped where refused[index] == nil && !existing.contains(batch[index].sessionId) {
            let messageIDs = inserted[index].map { BSONValue.objectID($0.id) }
            _ = try MongoCollection.with(StoredMessage.collection, in: database, client: client) {
                try $0.deleteMany(["_id": ["$in": .array(messageIDs)]])
            }
            outcomes[index] = .failure(sessionNotFound)
        }
    }

    /// Drops the whole database: for tests that each use a database of their own.
    package func dropDatabase() async throws {
        let database = clients.databaseName
        try await clients.withClient("dropDatabase") { client in
            _ = try runCommand(["dropDatabase": 1], database: database, client: client)
        }
    }

    private static let sessionNotFound = ChatError(.notFound, code: "SESSION_NOT_FOUND", message: "Session not found")

    /// A fresh ObjectId as 24 lowercase hex digits.
    private static func newObjectID() -> String { ObjectID.make() }
}

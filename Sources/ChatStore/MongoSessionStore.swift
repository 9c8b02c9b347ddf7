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

    /// Starts the store's threads; connects on first use, so MongoDB need not be up yet. Throws on a bad configuration.
    public init(configuration: MongoConfiguration, logger: Logger = Logger(label: "ChatStore")) throws {
        clients = try MongoClientPool(configuration: configuration, logger: logger)
    }

    /// The database this store uses (from the URI's path, `chat` by default).
    public var databaseName: String { clients.databaseName }

    /// Creates the indexes the queries need (idempotent): call once at start, before serving.
    public func prepare() async throws {
        let database = clients.databaseName
        try await clients.withClient("createIndexes") { client in
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
                        ["key": ["sessionId": 1, "createdAt": 1], "name": "sessionId_1_createdAt_1"],
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
        try await clients.withClient("ping") { client in
            _ = try runCommand(["ping": 1], database: "admin", client: client)
        }
    }

    /// Creates a session with a new ObjectId, no messages, and `createdAt == updatedAt == now`.
    public func createSession(userId: String, title: String, modelId: String?) async throws -> ChatSession {
        let now = storedNow()
        let session = ChatSession(
            id: Self.newObjectID(), userId: userId, title: title, modelId: modelId, createdAt: now, updatedAt: now, messageCount: 0
        )
        let document = StoredSession.document(session)
        let database = clients.databaseName
        try await clients.withClient("createSession") { client in
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
        return try await clients.withClient("listSessions") { client in
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
        return try await clients.withClient("findSession") { client in
            try MongoCollection.with(StoredSession.collection, in: database, client: client) { sessions in
                try sessions.find(filter, options: ["limit": 1]).first.map(StoredSession.session)
            }
        }
    }

    /// The session's messages, oldest first (ties in time by id, i.e. by insertion); empty for a malformed id.
    public func messages(sessionId: String) async throws -> [ChatMessage] {
        guard SessionID.isValid(sessionId) else { return [] }
        let filter: BSONFields = ["sessionId": .objectID(sessionId)]
        let database = clients.databaseName
        return try await clients.withClient("messages") { client in
            try MongoCollection.with(StoredMessage.collection, in: database, client: client) { messages in
                try messages.find(filter, options: ["sort": ["createdAt": 1, "_id": 1]]).map(StoredMessage.message)
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

    /// Appends a message once per (jobId, role): a repeat returns the first stored message unchanged.
    /// A newly stored message bumps the session's `updatedAt` and `messageCount`; throws
    /// `SESSION_NOT_FOUND` (storing nothing) when the session does not exist.
    public func appendMessage(_ message: NewMessage) async throws -> ChatMessage {
        guard SessionID.isValid(message.sessionId) else { throw Self.sessionNotFound }
        let now = storedNow()
        let query: BSONFields = ["jobId": .string(message.jobId), "role": .string(message.role.rawValue)]
        let update: BSONFields = [
            "$setOnInsert": .document(StoredMessage.document(message, id: message.id ?? Self.newObjectID(), createdAt: message.createdAt ?? now))
        ]
        let database = clients.databaseName
        return try await clients.withClient("appendMessage") { client in
            let (document, inserted) = try MongoCollection.with(StoredMessage.collection, in: database, client: client) { messages in
                // Upserts of the same (jobId, role) can race: the unique index lets one insert and the
                // others fail (duplicate key) or come back empty; the winner's document exists by
                // then, so the next attempt finds it.
                for _ in 1..<Self.upsertAttempts {
                    do {
                        if let outcome = try messages.upsert(query, update) { return outcome }
                    } catch let error as MongoDriverError where error.isDuplicateKey {}
                }
                guard let outcome = try messages.upsert(query, update) else {
                    throw MongoDriverError(domain: 0, code: 0, message: "findAndModify upsert kept returning no document")
                }
                return outcome
            }
            let stored = try StoredMessage.message(document)
            guard inserted else { return stored }
            let matched = try MongoCollection.with(StoredSession.collection, in: database, client: client) {
                try $0.updateOne(
                    ["_id": .objectID(message.sessionId)],
                    ["$max": ["updatedAt": .date(now)], "$inc": ["messageCount": 1, "contentBytes": .int64(Int64(message.content.utf8.count))]]
                )
            }
            guard matched == 0 else { return stored }
            // The session is gone (deleted meanwhile, or never was): take the message back out.
            _ = try MongoCollection.with(StoredMessage.collection, in: database, client: client) {
                try $0.deleteOne(["_id": .objectID(stored.id)])
            }
            throw Self.sessionNotFound
        }
    }

    /// Drops the whole database: for tests that each use a database of their own.
    package func dropDatabase() async throws {
        let database = clients.databaseName
        try await clients.withClient("dropDatabase") { client in
            _ = try runCommand(["dropDatabase": 1], database: database, client: client)
        }
    }

    /// How often appendMessage tries its upsert when concurrent ones of the same (jobId, role) race it.
    private static let upsertAttempts = 3

    private static let sessionNotFound = ChatError(.notFound, code: "SESSION_NOT_FOUND", message: "Session not found")

    /// A fresh ObjectId as 24 lowercase hex digits.
    private static func newObjectID() -> String { ObjectID.make() }
}

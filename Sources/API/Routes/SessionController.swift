import Accounting
import ChatCore
import ChatState
import Foundation
import Hummingbird
import Queue

/// The sessions endpoints: create, list (paginated), get with messages, delete, messages. Owner only:
/// another user's session is 404, the same as one that does not exist.
struct SessionController: Sendable {
    let store: any SessionStore
    let ledger: any CreditLedger
    let state: GenerationState
    let cache: SessionCache
    let starter: GenerationStarter
    /// Titles of more characters than this are refused.
    static let maxTitleLength = 200
    /// Titles of more UTF-8 bytes than this are refused (a character may hide any number of combining marks).
    static let maxTitleBytes = 1_000
    /// Messages of more UTF-8 bytes than this are refused.
    static let maxMessageBytes = 100_000
    /// The longest system prompt a session may have, in UTF-8 bytes.
    static let maxSystemPromptBytes = 32_000

    func register(on group: RouterGroup<ChatRequestContext>) {
        group.post("/sessions", use: create)
        group.get("/sessions", use: list)
        group.get("/sessions/:id", use: get)
        group.delete("/sessions/:id", use: delete)
        group.get("/sessions/:id/messages", use: messages)
    }

    @Sendable func create(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let body = try await request.decodeBody(CreateSessionBody.self, context: context)
        let title = body.title!
        let modelID = body.modelId
        let initialMessage = body.initialMessage
        if let modelID { _ = try starter.model(id: modelID, role: user.role) }
        let token = try context.requireToken()
        guard try await ledger.hasCredits(1, token: token) else { throw AccountingClient.insufficient }
        let session = try await store.createSession(userId: user.id, title: title, modelId: modelID, systemPrompt: body.systemPrompt)
        try await cache.created(session)
        var response = SessionView(session, defaultModelID: starter.catalog.defaultModelID)
        if let initialMessage {
            // The first message goes through the queue like any other; its reply lands in the session. Refused
            // (no credits, a full queue, too many replies at once), the session goes too: a client that tries
            // again does not leave a trail of empty sessions.
            do {
                let record = try await starter.start(
                    user: user, token: token, sessionID: session.id, message: initialMessage, modelID: nil, streaming: false,
                    requestID: context.requestID, trace: context.trace
                )
                response.initialJobId = record.jobID
            } catch let error as ChatError where [.paymentRequired, .tooManyRequests, .unavailable].contains(error.kind) {
                try? await cache.deleted(sessionID: session.id)
                _ = try? await store.deleteSession(id: session.id, userId: user.id)
                throw error
            }
        }
        return Response.json(status: .created, response)
    }

    @Sendable func list(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let page = try Self.queryInt(request, "page", default: 1, in: 1...1_000_000)
        let limit = try Self.queryInt(request, "limit", default: 20, in: 1...100)
        let result = try await store.listSessions(userId: user.id, page: page, limit: limit)
        let pages = result.total == 0 ? 0 : (result.total + limit - 1) / limit
        return Response.json(
            status: .ok,
            SessionListBody(
                sessions: result.sessions.map { SessionView($0, defaultModelID: starter.catalog.defaultModelID) },
                pagination: SessionListBody.Pagination(page: page, limit: limit, total: result.total, pages: pages)
            )
        )
    }

    @Sendable func get(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let session = try await ownedSession(request, context)
        let (messages, older) = try await messagesShown(session, before: nil, limit: Self.defaultMessagePage)
        var view = SessionView(session, messages: messages, defaultModelID: starter.catalog.defaultModelID)
        view.olderMessagesCursor = older?.token
        // The reply running now, so that a client that lost its stream (or reloaded) can follow it again.
        view.activeJobId = try await state.activeJob(sessionID: session.id)
        return Response.json(status: .ok, view)
    }

    @Sendable func delete(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let id = try Self.sessionID(context)
        // The owner is checked in the database, then the cache's tombstone goes first: from then on no generation
        // can begin in the session, and a delete that fails half way is retried whole (MongoDB still has it).
        guard try await store.session(id: id, userId: user.id) != nil else { throw Self.notFound }
        try await cache.deleted(sessionID: id)
        guard try await store.deleteSession(id: id, userId: user.id) else { throw Self.notFound }
        _ = try await state.cancelActive(sessionID: id)
        return Response.json(status: .ok, NoticeBody(message: "Session deleted", sessionId: id))
    }

    /// `?limit=` (1-200, 100) newest messages, oldest first, and `?before=` (a `nextCursor`) for older pages.
    @Sendable func messages(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let limit = try Self.queryInt(request, "limit", default: Self.defaultMessagePage, in: 1...Self.maxMessagePage)
        var before: MessageCursor?
        if let token = request.uri.queryParameters["before"], !token.isEmpty {
            guard let cursor = MessageCursor(token: token) else {
                throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "before must be a nextCursor of an earlier page")
            }
            before = cursor
        }
        let session = try await ownedSession(request, context)
        let (messages, older) = try await messagesShown(session, before: before, limit: limit)
        return Response.json(status: .ok, MessagesBody(sessionId: session.id, messages: messages.map(MessageView.init), nextCursor: older?.token))
    }

    /// Messages in a page unless the client asks otherwise, and at most.
    static let defaultMessagePage = 100
    static let maxMessagePage = 200

    /// The newest `limit` stored messages before `before`, with the cursor of the page before them when there are
    /// older ones; on the newest page, also the user's message of a reply running now (the worker stores it with
    /// the reply), under the id and time it will be stored with.
    private func messagesShown(_ session: ChatSession, before: MessageCursor?, limit: Int) async throws -> ([ChatMessage], MessageCursor?) {
        var messages = try await store.messages(sessionId: session.id, before: before, limit: limit + 1)
        var older: MessageCursor?
        if messages.count > limit {
            messages.removeFirst()
            older = messages.first.map(MessageCursor.init)
        }
        guard before == nil, let jobID = try await state.activeJob(sessionID: session.id),
            !messages.contains(where: { $0.jobId == jobID && $0.role == .user }),
            let pending = try await state.pendingMessage(jobID: jobID)
        else { return (messages, older) }
        messages.append(
            ChatMessage(
                id: pending.messageID, sessionId: session.id, jobId: jobID, role: .user, content: pending.text, modelId: nil, status: .complete,
                inputTokens: nil, outputTokens: nil, createdAt: pending.createdAt
            )
        )
        return (messages, older)
    }

    private func ownedSession(_ request: Request, _ context: ChatRequestContext) async throws -> ChatSession {
        let user = try context.requireUser()
        guard let session = try await store.session(id: try Self.sessionID(context), userId: user.id) else { throw Self.notFound }
        return session
    }

    static let notFound = ChatError(.notFound, code: "SESSION_NOT_FOUND", message: "Session not found")

    static func sessionID(_ context: ChatRequestContext) throws -> String {
        let id = try context.parameters.require("id")
        guard SessionID.isValid(id) else {
            throw ChatError(.badRequest, code: "INVALID_SESSION_ID", message: "Invalid session ID")
        }
        return id.lowercased()
    }

    static func queryInt(_ request: Request, _ name: String, default value: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text = request.uri.queryParameters[Substring(name)] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }
}

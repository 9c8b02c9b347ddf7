/// Where sessions and their messages are kept. The real one is MongoDB (`ChatStore`);
/// every read and write is scoped to the owner where an owner is given.
public protocol SessionStore: Sendable {
    /// Creates a session for `userId` (with the system prompt its model is given, if any) and returns it.
    func createSession(userId: String, title: String, modelId: String?, systemPrompt: String?) async throws -> ChatSession
    /// One page (1-based) of the user's sessions, most recently updated first.
    func listSessions(userId: String, page: Int, limit: Int) async throws -> SessionPage
    /// The session if it exists and belongs to `userId`; nil otherwise.
    func session(id: String, userId: String) async throws -> ChatSession?
    /// The session whatever its owner (for supervisors and workers); nil if it does not exist.
    func session(id: String) async throws -> ChatSession?
    /// The newest `limit` messages of the session older than `before` (all of them when nil), oldest first.
    func messages(sessionId: String, before: MessageCursor?, limit: Int) async throws -> [ChatMessage]
    /// Deletes the session and its messages if it belongs to `userId`; false if there was none.
    func deleteSession(id: String, userId: String) async throws -> Bool
    /// Appends the messages of one session's turn in one write, each once per (jobId, role): a repeat stores
    /// nothing and returns the message stored first. Returns the messages as stored, in the order given.
    func appendMessages(_ messages: [NewMessage]) async throws -> [ChatMessage]
    /// Succeeds when the database answers within the configured timeout.
    func ping() async throws
}

extension SessionStore {
    /// Creates a session without a system prompt.
    public func createSession(userId: String, title: String, modelId: String?) async throws -> ChatSession {
        try await createSession(userId: userId, title: title, modelId: modelId, systemPrompt: nil)
    }

    /// Every message of the session, oldest first: for small sessions and tests; the API and the worker read pages.
    public func messages(sessionId: String) async throws -> [ChatMessage] {
        try await messages(sessionId: sessionId, before: nil, limit: Int(Int32.max))
    }

    /// The newest messages of the session, oldest first, as many as hold `bytes` of text (at least one, if any),
    /// read a page of `pageSize` at a time: what a model's context can use, without reading a long session whole.
    public func recentMessages(sessionId: String, bytes: Int, pageSize: Int = 100) async throws -> [ChatMessage] {
        var pages: [[ChatMessage]] = []
        var total = 0
        var before: MessageCursor?
        while total < bytes {
            let page = try await messages(sessionId: sessionId, before: before, limit: pageSize)
            pages.append(page)
            total += page.reduce(0) { $0 + $1.content.utf8.count }
            guard page.count == pageSize, let oldest = page.first else { break }
            before = MessageCursor(oldest)
        }
        return pages.reversed().flatMap { $0 }
    }

    /// Appends one message; the same (jobId, role) twice stores one message and returns it both times.
    public func appendMessage(_ message: NewMessage) async throws -> ChatMessage {
        guard let stored = try await appendMessages([message]).first else {
            throw ChatError(.internal, code: "DATABASE_ERROR", message: "The message was not stored")
        }
        return stored
    }
}

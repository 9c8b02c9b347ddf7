import Foundation

/// A conversation owned by one user; its messages live in their own collection.
public struct ChatSession: Codable, Sendable, Equatable {
    /// The session id: 24 lowercase hex digits (a MongoDB ObjectId).
    public var id: String
    /// The owner's user id (the JWT subject).
    public var userId: String
    public var title: String
    /// The model used when a message does not name one.
    public var modelId: String?
    /// The instructions the model is given before every turn of the session (nil: none).
    public var systemPrompt: String?
    public var createdAt: Date
    public var updatedAt: Date
    /// Number of messages stored in the session.
    public var messageCount: Int
    /// UTF-8 bytes of all its messages' text: what a reservation must expect the history to cost.
    public var contentBytes: Int

    /// Creates a session value.
    public init(
        id: String, userId: String, title: String, modelId: String?, createdAt: Date, updatedAt: Date, messageCount: Int, contentBytes: Int = 0,
        systemPrompt: String? = nil
    ) {
        self.systemPrompt = systemPrompt
        self.id = id
        self.userId = userId
        self.title = title
        self.modelId = modelId
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.messageCount = messageCount
        self.contentBytes = contentBytes
    }
}

/// One page of a user's sessions, newest first, with the total count.
public struct SessionPage: Sendable, Equatable {
    public var sessions: [ChatSession]
    /// The number of sessions the user has in all.
    public var total: Int

    /// Creates a page.
    public init(sessions: [ChatSession], total: Int) {
        self.sessions = sessions
        self.total = total
    }
}

/// Session ids are MongoDB ObjectIds written as 24 hex digits.
public enum SessionID {
    /// Whether `text` has the shape of a session id; anything else is rejected before a database call.
    public static func isValid(_ text: some StringProtocol) -> Bool {
        text.utf8.count == 24 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }
    }
}

import Foundation

/// Who wrote a message.
public enum MessageRole: String, Codable, Sendable {
    case user
    case assistant
}

/// How a stored message came to an end.
public enum MessageStatus: String, Codable, Sendable {
    /// The whole reply (or a user's message).
    case complete
    /// A reply stopped by a cancellation; its text is what was generated until then.
    case cancelled
    /// A reply cut short by an error.
    case failed
}

/// A message as stored: one per (job, role), so a re-run job cannot duplicate it.
public struct ChatMessage: Codable, Sendable, Equatable {
    /// The message id: 24 hex digits.
    public var id: String
    public var sessionId: String
    /// The job that produced (or carried) the message.
    public var jobId: String
    public var role: MessageRole
    public var content: String
    public var modelId: String?
    public var status: MessageStatus
    public var inputTokens: Int?
    public var outputTokens: Int?
    public var createdAt: Date

    /// Creates a message value.
    public init(
        id: String, sessionId: String, jobId: String, role: MessageRole, content: String, modelId: String?,
        status: MessageStatus, inputTokens: Int?, outputTokens: Int?, createdAt: Date
    ) {
        self.id = id
        self.sessionId = sessionId
        self.jobId = jobId
        self.role = role
        self.content = content
        self.modelId = modelId
        self.status = status
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.createdAt = createdAt
    }
}

/// A message to append; the store assigns its id and creation time.
public struct NewMessage: Sendable, Equatable {
    /// The id to store it under (24 hex digits); nil: the store picks one.
    public var id: String?
    /// When it was written (the user's message: when the API took it); nil: when it is stored.
    public var createdAt: Date?
    public var sessionId: String
    public var jobId: String
    public var role: MessageRole
    public var content: String
    public var modelId: String?
    public var status: MessageStatus
    public var inputTokens: Int?
    public var outputTokens: Int?
    /// The job's attempt that produced it (a reply), kept with it.
    public var attempt: Int?

    /// Creates a message to append.
    public init(
        sessionId: String, jobId: String, role: MessageRole, content: String, modelId: String? = nil,
        status: MessageStatus = .complete, inputTokens: Int? = nil, outputTokens: Int? = nil, id: String? = nil, createdAt: Date? = nil,
        attempt: Int? = nil
    ) {
        self.id = id
        self.attempt = attempt
        self.createdAt = createdAt
        self.sessionId = sessionId
        self.jobId = jobId
        self.role = role
        self.content = content
        self.modelId = modelId
        self.status = status
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }
}

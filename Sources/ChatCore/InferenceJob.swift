import Foundation

/// What a worker needs to run one generation: ids and parameters only, never a bearer token or the history.
public struct InferenceJob: Codable, Sendable, Equatable {
    public var sessionId: String
    public var userId: String
    public var modelId: String
    /// The user's new message.
    public var message: String
    /// Whether the requester reads the reply as a stream (the job runs the same either way).
    public var streaming: Bool
    /// When the API accepted the request.
    public var requestedAt: Date

    /// Creates a job description.
    public init(sessionId: String, userId: String, modelId: String, message: String, streaming: Bool, requestedAt: Date = Date()) {
        self.sessionId = sessionId
        self.userId = userId
        self.modelId = modelId
        self.message = message
        self.streaming = streaming
        self.requestedAt = requestedAt
    }
}

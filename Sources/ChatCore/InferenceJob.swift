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
    /// The id the user's message is stored under (chosen by the API, so the session shows it while the reply runs).
    public var messageId: String?
    /// When the user's message was taken: its stored time, the same the session shows while the reply runs.
    public var messageCreatedAt: Date?
    /// The credit reservation's id: random, never shown to a client (who could otherwise settle it themselves).
    /// Nil in jobs enqueued before it existed, whose reservation id is the job id.
    public var reservationId: String?
    /// The tokens the reservation was made for: the worker makes the same reservation again while the reply
    /// runs, which extends it (nil in jobs enqueued before it was kept: no extension).
    public var estimatedTokens: Int?
    /// The message's sampling settings (nil: the model's defaults and the service's longest reply).
    public var settings: InferenceSettings?
    /// The session's system prompt (nil: none).
    public var systemPrompt: String?
    /// The model the reservation is priced at (the dearest of the chain), which its renewals must name again; nil
    /// in jobs enqueued before it was kept: `modelId`.
    public var reservedModelId: String?
    /// The id of the request that started the job, for the worker's log lines.
    public var requestId: String?
    /// The trace the job belongs to (W3C `traceparent`, a span of the request's trace), carried to the worker
    /// and its Bedrock call.
    public var traceparent: String?

    /// Creates a job description.
    public init(
        sessionId: String, userId: String, modelId: String, message: String, streaming: Bool, requestedAt: Date = Date(), messageId: String? = nil,
        messageCreatedAt: Date? = nil, reservationId: String? = nil, estimatedTokens: Int? = nil, requestId: String? = nil,
        traceparent: String? = nil, settings: InferenceSettings? = nil, systemPrompt: String? = nil, reservedModelId: String? = nil
    ) {
        self.reservedModelId = reservedModelId
        self.systemPrompt = systemPrompt
        self.settings = settings
        self.requestId = requestId
        self.traceparent = traceparent
        self.estimatedTokens = estimatedTokens
        self.messageId = messageId
        self.messageCreatedAt = messageCreatedAt
        self.reservationId = reservationId
        self.sessionId = sessionId
        self.userId = userId
        self.modelId = modelId
        self.message = message
        self.streaming = streaming
        self.requestedAt = requestedAt
    }
}

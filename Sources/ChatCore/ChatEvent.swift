import Foundation

/// An event of a generation job as clients see it (the SSE `event:` name and its JSON `data:`). The worker
/// encodes each event once; the API relays the stored bytes without parsing them.
public enum ChatEvent: Sendable, Equatable {
    case model(ModelEvent)
    case chunk(ChunkEvent)
    case complete(CompleteEvent)
    case error(ErrorEvent)
    case reset(ResetEvent)

    /// The SSE event name.
    public var type: ChatEventType {
        switch self {
        case .model: .model
        case .chunk: .chunk
        case .complete: .complete
        case .error: .error
        case .reset: .reset
        }
    }

    /// The event's JSON body. A chunk, the event sent most, is written by hand (the same JSON the encoder gives).
    public func encoded() throws -> String {
        if case .chunk(let chunk) = self {
            var text = #"{"content":""#
            text.reserveCapacity(chunk.content.utf8.count + 32)
            JSONText.appendEscaped(chunk.content, to: &text)
            text += #"","index":"#
            text += String(chunk.index)
            text += "}"
            return text
        }
        let encoder = Self.encoder
        let data: Data
        switch self {
        case .model(let body): data = try encoder.encode(body)
        case .chunk(let body): data = try encoder.encode(body)
        case .complete(let body): data = try encoder.encode(body)
        case .error(let body): data = try encoder.encode(body)
        case .reset(let body): data = try encoder.encode(body)
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Decodes the body of an event of type `type`; nil for a type without a typed body (`observer`).
    public static func decode(type: ChatEventType, data: String) throws -> ChatEvent? {
        let decoder = JSONDecoder()
        let bytes = Data(data.utf8)
        switch type {
        case .model: return .model(try decoder.decode(ModelEvent.self, from: bytes))
        case .chunk: return .chunk(try decoder.decode(ChunkEvent.self, from: bytes))
        case .complete: return .complete(try decoder.decode(CompleteEvent.self, from: bytes))
        case .error: return .error(try decoder.decode(ErrorEvent.self, from: bytes))
        case .reset: return .reset(try decoder.decode(ResetEvent.self, from: bytes))
        case .observer: return nil
        }
    }

    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

/// The SSE event names of the API.
public enum ChatEventType: String, Sendable, Codable {
    case model, chunk, complete, error, reset, observer

    /// Whether the event ends its job's stream.
    public var isTerminal: Bool { self == .complete || self == .error }
}

/// The first event of a run: which model answers.
public struct ModelEvent: Codable, Sendable, Equatable {
    public var jobId: String
    /// The job id again, under the name the guide's clients send back to `update-stream`.
    public var streamingSessionId: String
    public var modelId: String
    public var attempt: Int
    /// When a fallback answers: the model asked first, which was throttled or not ready (absent otherwise).
    public var fallbackFrom: String?

    /// Creates the event.
    public init(jobId: String, modelId: String, attempt: Int, fallbackFrom: String? = nil) {
        self.jobId = jobId
        self.streamingSessionId = jobId
        self.modelId = modelId
        self.attempt = attempt
        self.fallbackFrom = fallbackFrom
    }
}

/// One piece of the reply's text, numbered from 0.
public struct ChunkEvent: Codable, Sendable, Equatable {
    public var content: String
    public var index: Int

    /// Creates the event.
    public init(content: String, index: Int) {
        self.content = content
        self.index = index
    }
}

/// Where a generation's time went inside the service, in milliseconds; reported on `complete`.
public struct GenerationSpans: Codable, Sendable, Equatable {
    /// From the API's enqueue to a worker holding the job.
    public var pickup: Double
    /// From holding the job to the Bedrock request being sent.
    public var prepare: Double
    /// From the Bedrock request to its first piece of text.
    public var firstByte: Double
    /// Publishing the first chunk to Redis.
    public var publish: Double

    /// Creates the spans.
    public init(pickup: Double, prepare: Double, firstByte: Double, publish: Double) {
        self.pickup = pickup
        self.prepare = prepare
        self.firstByte = firstByte
        self.publish = publish
    }
}

/// The last event of a finished (or cancelled) reply: the whole text, the tokens and the credits.
public struct CompleteEvent: Codable, Sendable, Equatable {
    public var jobId: String
    public var streamingSessionId: String
    /// The stored assistant message; null when the session was deleted before the reply could be kept.
    public var messageId: String?
    public var content: String
    public var modelId: String
    public var stopReason: String
    public var inputTokens: Int
    public var outputTokens: Int
    public var totalTokens: Int
    public var creditsCharged: Double
    /// True while the accounting service has not yet taken the settlement (it is retried).
    public var settlementPending: Bool
    public var latencyMs: Int
    public var spans: GenerationSpans?
    /// When a fallback answered: the model asked first (absent otherwise); `modelId` is the one that answered and
    /// whose prices were charged.
    public var fallbackFrom: String?

    /// Creates the event.
    public init(
        jobId: String, messageId: String?, content: String, modelId: String, stopReason: String, inputTokens: Int, outputTokens: Int,
        creditsCharged: Double, settlementPending: Bool, latencyMs: Int, spans: GenerationSpans?, fallbackFrom: String? = nil
    ) {
        self.fallbackFrom = fallbackFrom
        self.jobId = jobId
        self.streamingSessionId = jobId
        self.messageId = messageId
        self.content = content
        self.modelId = modelId
        self.stopReason = stopReason
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.totalTokens = inputTokens + outputTokens
        self.creditsCharged = creditsCharged
        self.settlementPending = settlementPending
        self.latencyMs = latencyMs
        self.spans = spans
    }

    /// Encodes `messageId` as null rather than leaving it out.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(jobId, forKey: .jobId)
        try container.encode(streamingSessionId, forKey: .streamingSessionId)
        try container.encode(messageId, forKey: .messageId)
        try container.encode(content, forKey: .content)
        try container.encode(modelId, forKey: .modelId)
        try container.encode(stopReason, forKey: .stopReason)
        try container.encode(inputTokens, forKey: .inputTokens)
        try container.encode(outputTokens, forKey: .outputTokens)
        try container.encodeIfPresent(fallbackFrom, forKey: .fallbackFrom)
        try container.encode(totalTokens, forKey: .totalTokens)
        try container.encode(creditsCharged, forKey: .creditsCharged)
        try container.encode(settlementPending, forKey: .settlementPending)
        try container.encode(latencyMs, forKey: .latencyMs)
        try container.encodeIfPresent(spans, forKey: .spans)
    }
}

/// A job that ended without a reply.
public struct ErrorEvent: Codable, Sendable, Equatable {
    public var jobId: String
    public var code: String
    public var message: String

    /// Creates the event.
    public init(jobId: String, code: String, message: String) {
        self.jobId = jobId
        self.code = code
        self.message = message
    }
}

/// A re-run is starting: clients drop the text of the earlier attempt.
public struct ResetEvent: Codable, Sendable, Equatable {
    public var jobId: String
    public var attempt: Int
    public var message: String

    /// Creates the event.
    public init(jobId: String, attempt: Int, message: String = "The reply is being generated again") {
        self.jobId = jobId
        self.attempt = attempt
        self.message = message
    }
}

import ChatCore
import Foundation

/// One turn of a conversation as sent to a model.
public struct ConversationTurn: Sendable, Equatable {
    public var role: MessageRole
    public var text: String

    /// Creates a turn.
    public init(role: MessageRole, text: String) {
        self.role = role
        self.text = text
    }
}

/// What to generate: the conversation (oldest first, ending with the user's new message) and the parameters.
public struct GenerationRequest: Sendable, Equatable {
    /// An optional system prompt.
    public var system: String?
    public var turns: [ConversationTurn]
    /// The most tokens the reply may have.
    public var maxTokens: Int
    public var temperature: Double?
    public var topP: Double?
    public var stopSequences: [String]

    /// Creates a request.
    public init(system: String? = nil, turns: [ConversationTurn], maxTokens: Int, temperature: Double? = nil, topP: Double? = nil, stopSequences: [String] = []) {
        self.system = system
        self.turns = turns
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.stopSequences = stopSequences
    }
}

/// Token counts; either may be unknown in a partial report (a stream chunk).
public struct TokenUsage: Sendable, Equatable {
    public var inputTokens: Int?
    public var outputTokens: Int?

    /// Creates a usage value.
    public init(inputTokens: Int?, outputTokens: Int?) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }

    /// This usage with the counts `other` knows taking precedence.
    public func merged(with other: TokenUsage?) -> TokenUsage {
        TokenUsage(inputTokens: other?.inputTokens ?? inputTokens, outputTokens: other?.outputTokens ?? outputTokens)
    }
}

/// Why a model stopped, normalized across families.
public enum StopReason: String, Sendable, Equatable, Codable {
    /// The model finished its answer.
    case endTurn = "end_turn"
    /// The reply reached the requested maximum length.
    case maxTokens = "max_tokens"
    /// A stop sequence was generated.
    case stopSequence = "stop_sequence"
    /// A content filter or guardrail stopped it.
    case contentFiltered = "content_filtered"
    /// The service stopped it on the user's request.
    case cancelled
}

/// A whole reply (InvokeModel).
public struct Completion: Sendable, Equatable {
    public var text: String
    public var stopReason: StopReason?
    /// From the model's own usage fields.
    public var usage: TokenUsage?

    /// Creates a completion.
    public init(text: String, stopReason: StopReason?, usage: TokenUsage?) {
        self.text = text
        self.stopReason = stopReason
        self.usage = usage
    }
}

/// What one stream chunk (the model's JSON inside an event's `bytes`) contributes.
public struct ChunkDelta: Sendable, Equatable {
    /// Text to append; empty for chunks that carry none.
    public var text: String
    public var stopReason: StopReason?
    /// Counts from the model's own usage fields, where this chunk has them.
    public var usage: TokenUsage?
    /// Counts from `amazon-bedrock-invocationMetrics` (on the last chunk).
    public var invocationMetrics: TokenUsage?

    /// Creates a delta.
    public init(text: String, stopReason: StopReason? = nil, usage: TokenUsage? = nil, invocationMetrics: TokenUsage? = nil) {
        self.text = text
        self.stopReason = stopReason
        self.usage = usage
        self.invocationMetrics = invocationMetrics
    }
}

/// A model family's request and response bodies. Adapters are pure: bytes in, values out.
public protocol ModelAdapter: Sendable {
    /// The family this adapter speaks.
    var family: ModelFamily { get }
    /// The InvokeModel / InvokeModelWithResponseStream JSON body for `request`.
    func requestBody(for request: GenerationRequest) throws -> Data
    /// Reads an InvokeModel response body.
    func parseResponse(_ body: Data) throws -> Completion
    /// Reads one stream chunk: the JSON the event's base64 `bytes` field decodes to.
    func parseChunk(_ chunk: Data) throws -> ChunkDelta
}

/// A body that is not what the model family sends.
public struct ModelResponseError: Error, Sendable, CustomStringConvertible {
    public var family: ModelFamily
    public var message: String

    /// Creates an error.
    public init(family: ModelFamily, message: String) {
        self.family = family
        self.message = message
    }

    public var description: String { "\(family.rawValue) response: \(message)" }
}

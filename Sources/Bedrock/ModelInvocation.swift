import ChatCore
import Foundation

/// Where the billed token counts came from, in order of preference.
public enum UsageSource: String, Sendable, Equatable {
    /// The model's own usage fields.
    case model
    /// `amazon-bedrock-invocationMetrics` on the last chunk.
    case invocationMetrics
    /// The InvokeModel response headers.
    case headers
    /// None of them: counts are unknown.
    case unknown
}

/// What a generation produced, with the token counts to bill.
public struct GenerationResult: Sendable, Equatable {
    public var text: String
    public var stopReason: StopReason?
    /// Input and output tokens as Bedrock reported them (0 where unknown).
    public var inputTokens: Int
    public var outputTokens: Int
    public var usageSource: UsageSource
    public var requestID: String?
    /// Tries the call took.
    public var attempts: Int
}

/// Folds a stream's deltas into the reply so far and its final token counts.
public struct GenerationAccumulator: Sendable, Equatable {
    public private(set) var text = ""
    public private(set) var stopReason: StopReason?
    private var usage = TokenUsage(inputTokens: nil, outputTokens: nil)
    private var metrics = TokenUsage(inputTokens: nil, outputTokens: nil)
    private var sawUsage = false
    private var sawMetrics = false

    /// An empty reply.
    public init() {}

    /// Adds one chunk's contribution.
    public mutating func add(_ delta: ChunkDelta) {
        text += delta.text
        if let reason = delta.stopReason { stopReason = reason }
        if let partial = delta.usage {
            usage = usage.merged(with: partial)
            sawUsage = true
        }
        if let partial = delta.invocationMetrics {
            metrics = metrics.merged(with: partial)
            sawMetrics = true
        }
    }

    /// The counts to bill: the model's usage fields where complete, else the invocation metrics.
    public var billedUsage: (input: Int, output: Int, source: UsageSource) {
        if sawUsage, let input = usage.inputTokens, let output = usage.outputTokens { return (input, output, .model) }
        if sawMetrics, let input = metrics.inputTokens, let output = metrics.outputTokens { return (input, output, .invocationMetrics) }
        if sawUsage || sawMetrics {
            let input = usage.inputTokens ?? metrics.inputTokens ?? 0
            let output = usage.outputTokens ?? metrics.outputTokens ?? 0
            return (input, output, sawUsage ? .model : .invocationMetrics)
        }
        return (0, 0, .unknown)
    }
}

/// A model's reply as it streams: text deltas through the family's adapter.
public struct GenerationStream: AsyncSequence, Sendable {
    public typealias Element = ChunkDelta
    /// The underlying Bedrock stream (request id, attempts).
    public let response: BedrockResponseStream
    let adapter: any ModelAdapter

    /// Parses each chunk as it is pulled.
    public func makeAsyncIterator() -> Iterator {
        Iterator(chunks: response.makeAsyncIterator(), adapter: adapter, requestID: response.requestID)
    }

    /// Pulls one chunk and parses it.
    public struct Iterator: AsyncIteratorProtocol {
        var chunks: BedrockResponseStream.Iterator
        let adapter: any ModelAdapter
        let requestID: String?

        public mutating func next() async throws -> ChunkDelta? {
            guard let chunk = try await chunks.next() else { return nil }
            do {
                return try adapter.parseChunk(chunk)
            } catch {
                throw BedrockError(code: "InvalidResponse", message: "\(error)", requestID: requestID)
            }
        }
    }
}

extension BedrockClient {
    /// Generates a whole reply through `api` (the model's own by default): Converse, or InvokeModel with the
    /// model's family adapter.
    public func generate(model: ModelInfo, request: GenerationRequest, api: BedrockAPI? = nil) async throws -> GenerationResult {
        let response: InvokeModelResponse
        let adapter: any ModelAdapter
        switch api ?? model.api {
        case .converse:
            adapter = ConverseAdapter(family: model.family)
            response = try await converse(modelID: model.invocationID(inRegion: configuration.region), region: model.region, body: try adapter.requestBody(for: request))
        case .invokeModel:
            adapter = ModelAdapters.adapter(for: model.family)
            response = try await invokeModel(modelID: model.invocationID(inRegion: configuration.region), region: model.region, body: try adapter.requestBody(for: request))
        }
        let completion: Completion
        do {
            completion = try adapter.parseResponse(response.body)
        } catch {
            throw BedrockError(code: "InvalidResponse", message: "\(error)", requestID: response.requestID)
        }
        var input = completion.usage?.inputTokens
        var output = completion.usage?.outputTokens
        var source = UsageSource.model
        if input == nil || output == nil {
            input = input ?? response.headerUsage.inputTokens
            output = output ?? response.headerUsage.outputTokens
            source = response.headerUsage.inputTokens != nil || response.headerUsage.outputTokens != nil ? .headers : .unknown
        }
        return GenerationResult(
            text: completion.text, stopReason: completion.stopReason, inputTokens: input ?? 0, outputTokens: output ?? 0,
            usageSource: source, requestID: response.requestID, attempts: response.attempts
        )
    }

    /// Starts a streamed reply through `api` (the model's own by default): ConverseStream, or
    /// InvokeModelWithResponseStream with the model's family adapter.
    public func streamGeneration(model: ModelInfo, request: GenerationRequest, api: BedrockAPI? = nil) async throws -> GenerationStream {
        switch api ?? model.api {
        case .converse:
            let adapter = ConverseAdapter(family: model.family)
            return GenerationStream(response: try await converseStream(modelID: model.invocationID(inRegion: configuration.region), region: model.region, body: try adapter.requestBody(for: request)), adapter: adapter)
        case .invokeModel:
            let adapter = ModelAdapters.adapter(for: model.family)
            return GenerationStream(response: try await invokeModelWithResponseStream(modelID: model.invocationID(inRegion: configuration.region), region: model.region, body: try adapter.requestBody(for: request)), adapter: adapter)
        }
    }
}

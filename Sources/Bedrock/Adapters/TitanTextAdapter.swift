import ChatCore
import Foundation

/// Amazon Titan Text (Express, Lite): one prompt string, the conversation rendered as `User:` / `Bot:` lines.
public struct TitanTextAdapter: ModelAdapter {
    /// Always `.amazonTitan`.
    public var family: ModelFamily { .amazonTitan }

    /// Creates the adapter.
    public init() {}

    /// The `inputText` / `textGenerationConfig` body, optional fields left out when unset.
    public func requestBody(for request: GenerationRequest) throws -> Data {
        let config = GenerationConfig(
            maxTokenCount: request.maxTokens, temperature: request.temperature, topP: request.topP,
            stopSequences: ModelAdapters.stopSequences(of: request)
        )
        return try AdapterJSON.encode(Request(inputText: Self.prompt(for: request), textGenerationConfig: config))
    }

    /// The prompt: the system prompt and a blank line if any, then `User: …` and `Bot: …` lines, ending with `Bot:`.
    public static func prompt(for request: GenerationRequest) -> String {
        var prompt = ModelAdapters.systemPrompt(of: request).map { $0 + "\n\n" } ?? ""
        for turn in request.turns {
            prompt += (turn.role == .user ? "User: " : "Bot: ") + turn.text + "\n"
        }
        return prompt + "Bot:"
    }

    /// The first result's text and completion reason, with `inputTextTokenCount` and its `tokenCount`.
    public func parseResponse(_ body: Data) throws -> Completion {
        let response = try AdapterJSON.decode(Response.self, from: body, family: family)
        guard let result = response.results.first else {
            throw ModelResponseError(family: family, message: "empty results")
        }
        return Completion(
            text: result.outputText,
            stopReason: result.completionReason.flatMap(Self.stopReason),
            usage: ModelAdapters.usage(input: response.inputTextTokenCount, output: result.tokenCount)
        )
    }

    /// One stream chunk; `totalOutputTextTokenCount` is a running total, so the latest reported value is the count.
    public func parseChunk(_ chunk: Data) throws -> ChunkDelta {
        let event = try AdapterJSON.decode(StreamChunk.self, from: chunk, family: family)
        return ChunkDelta(
            text: event.outputText, stopReason: event.completionReason.flatMap(Self.stopReason),
            usage: ModelAdapters.usage(input: event.inputTextTokenCount, output: event.totalOutputTextTokenCount),
            invocationMetrics: event.invocationMetrics?.usage
        )
    }

    /// Titan's `completionReason` as a `StopReason`; nil for values with no counterpart.
    static func stopReason(_ value: String) -> StopReason? {
        switch value {
        case "FINISH": .endTurn
        case "LENGTH": .maxTokens
        case "STOP_CRITERIA_MET": .stopSequence
        case "CONTENT_FILTERED": .contentFiltered
        default: nil
        }
    }
}

// MARK: - Wire types

extension TitanTextAdapter {
    private struct Request: Encodable {
        var inputText: String
        var textGenerationConfig: GenerationConfig
    }

    private struct GenerationConfig: Encodable {
        var maxTokenCount: Int
        var temperature: Double?
        var topP: Double?
        var stopSequences: [String]?
    }

    private struct Response: Decodable {
        struct Result: Decodable {
            var tokenCount: Int?
            var outputText: String
            var completionReason: String?
        }

        var inputTextTokenCount: Int?
        var results: [Result]
    }

    private struct StreamChunk: Decodable {
        var outputText: String
        var totalOutputTextTokenCount: Int?
        var completionReason: String?
        var inputTextTokenCount: Int?
        var invocationMetrics: ModelAdapters.InvocationMetrics?

        enum CodingKeys: String, CodingKey {
            case outputText, totalOutputTextTokenCount, completionReason, inputTextTokenCount
            case invocationMetrics = "amazon-bedrock-invocationMetrics"
        }
    }
}

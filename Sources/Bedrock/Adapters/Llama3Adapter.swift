import ChatCore
import Foundation

/// Meta Llama 3 Instruct: one prompt string in Llama 3's chat template.
public struct Llama3Adapter: ModelAdapter {
    /// Always `.metaLlama3`.
    public var family: ModelFamily { .metaLlama3 }

    /// Creates the adapter.
    public init() {}

    /// The `prompt` / `max_gen_len` body, optional fields left out when unset (Llama takes no stop sequences).
    public func requestBody(for request: GenerationRequest) throws -> Data {
        try AdapterJSON.encode(
            Request(prompt: Self.prompt(for: request), maxGenLen: request.maxTokens, temperature: request.temperature, topP: request.topP)
        )
    }

    /// The Llama 3 chat template: `<|begin_of_text|>`, one header-and-`<|eot_id|>` block per message (system first),
    /// then an open assistant header for the reply.
    public static func prompt(for request: GenerationRequest) -> String {
        func block(_ role: String, _ text: String) -> String {
            "<|start_header_id|>\(role)<|end_header_id|>\n\n\(text)<|eot_id|>"
        }
        var prompt = "<|begin_of_text|>"
        if let system = ModelAdapters.systemPrompt(of: request) {
            prompt += block("system", system)
        }
        for turn in request.turns {
            prompt += block(turn.role.rawValue, turn.text)
        }
        return prompt + "<|start_header_id|>assistant<|end_header_id|>\n\n"
    }

    /// `generation`, `stop_reason` and the two token counts.
    public func parseResponse(_ body: Data) throws -> Completion {
        let response = try AdapterJSON.decode(Body.self, from: body, family: family)
        return Completion(
            text: response.generation, stopReason: response.stopReason.flatMap(Self.stopReason),
            usage: ModelAdapters.usage(input: response.promptTokenCount, output: response.generationTokenCount)
        )
    }

    /// One stream chunk. Bedrock sends `prompt_token_count` on the first chunk only (null later) and
    /// `generation_token_count` as the running total so far, so both are passed on as reported, never summed:
    /// the latest non-null value of each is the count (and the last chunk's invocation metrics confirm it).
    public func parseChunk(_ chunk: Data) throws -> ChunkDelta {
        let event = try AdapterJSON.decode(Body.self, from: chunk, family: family)
        return ChunkDelta(
            text: event.generation, stopReason: event.stopReason.flatMap(Self.stopReason),
            usage: ModelAdapters.usage(input: event.promptTokenCount, output: event.generationTokenCount),
            invocationMetrics: event.invocationMetrics?.usage
        )
    }

    /// Llama's `stop_reason` as a `StopReason`; nil for values with no counterpart.
    static func stopReason(_ value: String) -> StopReason? {
        switch value {
        case "stop": .endTurn
        case "length": .maxTokens
        default: nil
        }
    }
}

// MARK: - Wire types

extension Llama3Adapter {
    private struct Request: Encodable {
        var prompt: String
        var maxGenLen: Int
        var temperature: Double?
        var topP: Double?

        enum CodingKeys: String, CodingKey {
            case prompt, maxGenLen = "max_gen_len", temperature, topP = "top_p"
        }
    }

    /// The response body and each stream chunk have the same fields.
    private struct Body: Decodable {
        var generation: String
        var promptTokenCount: Int?
        var generationTokenCount: Int?
        var stopReason: String?
        var invocationMetrics: ModelAdapters.InvocationMetrics?

        enum CodingKeys: String, CodingKey {
            case generation, promptTokenCount = "prompt_token_count", generationTokenCount = "generation_token_count"
            case stopReason = "stop_reason", invocationMetrics = "amazon-bedrock-invocationMetrics"
        }
    }
}

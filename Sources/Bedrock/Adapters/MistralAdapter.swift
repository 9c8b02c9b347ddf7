import ChatCore
import Foundation

/// Mistral 7B Instruct, Mixtral 8x7B and Mistral Large (24.02): one prompt string in the `[INST]` layout.
public struct MistralAdapter: ModelAdapter {
    /// Always `.mistral`.
    public var family: ModelFamily { .mistral }

    /// Creates the adapter.
    public init() {}

    /// The `prompt` / `max_tokens` body, optional fields left out when unset.
    public func requestBody(for request: GenerationRequest) throws -> Data {
        try AdapterJSON.encode(
            Request(
                prompt: Self.prompt(for: request), maxTokens: request.maxTokens,
                stop: ModelAdapters.stopSequences(of: request), temperature: request.temperature, topP: request.topP
            )
        )
    }

    /// The instruct layout `<s>[INST] {system + first user} [/INST] {assistant}</s>[INST] {user} [/INST]`,
    /// over alternating turns starting with the user (Mistral's template has no system role).
    public static func prompt(for request: GenerationRequest) -> String {
        let turns = ModelAdapters.alternatingTurns(of: request)
        let system = ModelAdapters.systemPrompt(of: request)
        guard !turns.isEmpty else { return "<s>[INST] \(system ?? "") [/INST]" }
        var prompt = "<s>"
        for (index, turn) in turns.enumerated() {
            switch turn.role {
            case .user:
                let text = index == 0 ? [system, turn.text].compactMap { $0 }.joined(separator: "\n\n") : turn.text
                prompt += "[INST] \(text) [/INST]"
            case .assistant:
                // A closing assistant turn stays open (no `</s>`) so the model continues it.
                prompt += " \(turn.text)" + (index == turns.count - 1 ? "" : "</s>")
            }
        }
        return prompt
    }

    /// The first output's text and stop reason; Mistral's body has no token counts, so `usage` is nil
    /// (they come from the InvokeModel response headers).
    public func parseResponse(_ body: Data) throws -> Completion {
        let response = try AdapterJSON.decode(Body.self, from: body, family: family)
        guard let output = response.outputs.first else {
            throw ModelResponseError(family: family, message: "empty outputs")
        }
        return Completion(text: output.text, stopReason: output.stopReason.flatMap(Self.stopReason), usage: nil)
    }

    /// One stream chunk; token counts come only from the last chunk's invocation metrics.
    public func parseChunk(_ chunk: Data) throws -> ChunkDelta {
        let event = try AdapterJSON.decode(Body.self, from: chunk, family: family)
        return ChunkDelta(
            text: event.outputs.map(\.text).joined(),
            stopReason: event.outputs.lazy.compactMap { $0.stopReason.flatMap(Self.stopReason) }.first,
            invocationMetrics: event.invocationMetrics?.usage
        )
    }

    /// Mistral's `stop_reason` as a `StopReason`; nil for values with no counterpart.
    static func stopReason(_ value: String) -> StopReason? {
        switch value {
        case "stop": .endTurn
        case "length": .maxTokens
        default: nil
        }
    }
}

// MARK: - Wire types

extension MistralAdapter {
    private struct Request: Encodable {
        var prompt: String
        var maxTokens: Int
        var stop: [String]?
        var temperature: Double?
        var topP: Double?

        enum CodingKeys: String, CodingKey {
            case prompt, maxTokens = "max_tokens", stop, temperature, topP = "top_p"
        }
    }

    /// The response body and each stream chunk have the same fields.
    private struct Body: Decodable {
        struct Output: Decodable {
            var text: String
            var stopReason: String?

            enum CodingKeys: String, CodingKey {
                case text, stopReason = "stop_reason"
            }
        }

        var outputs: [Output]
        var invocationMetrics: ModelAdapters.InvocationMetrics?

        enum CodingKeys: String, CodingKey {
            case outputs, invocationMetrics = "amazon-bedrock-invocationMetrics"
        }
    }
}

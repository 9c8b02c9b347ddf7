import ChatCore
import Foundation

/// Anthropic Claude on Bedrock, Messages API (`anthropic_version: bedrock-2023-05-31`).
public struct ClaudeAdapter: ModelAdapter {
    /// Always `.anthropicClaude`.
    public var family: ModelFamily { .anthropicClaude }

    /// Creates the adapter.
    public init() {}

    /// The Messages API body: alternating turns starting with the user, optional fields left out when unset.
    /// Written by hand, keys sorted as `AdapterJSON.encode` sorts them (`make profile` had shown `JSONEncoder`
    /// among the worker's largest costs, growing with the history a request carries).
    public func requestBody(for request: GenerationRequest) throws -> Data {
        var json = #"{"anthropic_version":"bedrock-2023-05-31","max_tokens":"#
        json += String(request.maxTokens)
        json += #","messages":["#
        for (index, turn) in ModelAdapters.alternatingTurns(of: request).enumerated() {
            if index > 0 { json += "," }
            json += #"{"content":[{"text":""#
            JSONText.appendEscaped(turn.text, to: &json)
            json += #"","type":"text"}],"role":""#
            json += turn.role.rawValue
            json += #""}"#
        }
        json += "]"
        if let stops = ModelAdapters.stopSequences(of: request) {
            json += #","stop_sequences":"#
            ModelAdapters.appendJSONArray(of: stops, to: &json)
        }
        if let system = ModelAdapters.systemPrompt(of: request) {
            json += #","system":""#
            JSONText.appendEscaped(system, to: &json)
            json += #"""#
        }
        if let temperature = request.temperature { json += #","temperature":"# + (try ModelAdapters.jsonNumber(temperature, "temperature")) }
        if let topP = request.topP { json += #","top_p":"# + (try ModelAdapters.jsonNumber(topP, "top_p")) }
        json += "}"
        return Data(json.utf8)
    }

    /// The text of all text blocks joined, the stop reason and `usage`.
    public func parseResponse(_ body: Data) throws -> Completion {
        let response = try AdapterJSON.decode(Response.self, from: body, family: family)
        return Completion(
            text: response.content.compactMap { $0.type == "text" ? $0.text : nil }.joined(),
            stopReason: response.stopReason.flatMap(Self.stopReason),
            usage: response.usage.flatMap { ModelAdapters.usage(input: $0.inputTokens, output: $0.outputTokens) }
        )
    }

    /// One stream event; usage values are the running totals Claude reports (input at `message_start`,
    /// output growing through `message_delta`), so the latest reported value is the count.
    public func parseChunk(_ chunk: Data) throws -> ChunkDelta {
        if let text = Self.plainTextDelta(chunk) { return ChunkDelta(text: text) }
        let event = try AdapterJSON.decode(StreamEvent.self, from: chunk, family: family)
        var delta = ChunkDelta(text: "", invocationMetrics: event.invocationMetrics?.usage)
        switch event.type {
        case "message_start":
            guard let message = event.message else { throw missing("message", in: event.type) }
            delta.usage = message.usage.flatMap { ModelAdapters.usage(input: $0.inputTokens, output: $0.outputTokens) }
        case "content_block_start":
            guard let block = event.contentBlock else { throw missing("content_block", in: event.type) }
            if block.type == "text" { delta.text = block.text ?? "" }
        case "content_block_delta":
            guard let change = event.delta else { throw missing("delta", in: event.type) }
            if change.type == "text_delta" {
                guard let text = change.text else { throw missing("delta.text", in: event.type) }
                delta.text = text
            }
        case "message_delta":
            delta.stopReason = event.delta?.stopReason.flatMap(Self.stopReason)
            delta.usage = event.usage.flatMap { ModelAdapters.usage(input: $0.inputTokens, output: $0.outputTokens) }
        case "error":
            throw ModelResponseError(family: family, message: "error event: \(event.error?.message ?? "no message")")
        default:
            // content_block_stop, message_stop, ping and event types added later carry no text.
            break
        }
        return delta
    }

    /// The text of the commonest event, read without a JSON decoder: exactly
    /// `{"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"..."}}` with a text free of
    /// `\u` escapes. Anything else (other events, other spacing or order, extra fields) returns nil and goes
    /// through the decoder.
    static func plainTextDelta(_ chunk: Data) -> String? {
        chunk.withUnsafeBytes { raw -> String? in
            var scanner = JSONScanner(raw)
            guard scanner.expect(#"{"type":"content_block_delta","index":"#), scanner.digits(),
                scanner.expect(#","delta":{"type":"text_delta","text":""#), let text = scanner.stringBody(), scanner.expect("}}"), scanner.atEnd
            else { return nil }
            return JSONScanner.text(text)
        }
    }

    /// Claude's `stop_reason` as a `StopReason`; nil for values with no counterpart (e.g. `tool_use`).
    static func stopReason(_ value: String) -> StopReason? {
        switch value {
        case "end_turn": .endTurn
        case "max_tokens": .maxTokens
        case "stop_sequence": .stopSequence
        case "refusal": .contentFiltered
        default: nil
        }
    }

    private func missing(_ field: String, in eventType: String) -> ModelResponseError {
        ModelResponseError(family: family, message: "missing field \(field) in \(eventType) event")
    }
}

// MARK: - Wire types

extension ClaudeAdapter {
    private struct Usage: Decodable {
        var inputTokens: Int?
        var outputTokens: Int?

        enum CodingKeys: String, CodingKey {
            case inputTokens = "input_tokens", outputTokens = "output_tokens"
        }
    }

    private struct ContentBlock: Decodable {
        var type: String
        var text: String?
    }

    private struct Response: Decodable {
        var content: [ContentBlock]
        var stopReason: String?
        var usage: Usage?

        enum CodingKeys: String, CodingKey {
            case content, stopReason = "stop_reason", usage
        }
    }

    private struct StreamEvent: Decodable {
        struct MessageStart: Decodable {
            var usage: Usage?
        }

        struct Delta: Decodable {
            var type: String?
            var text: String?
            var stopReason: String?

            enum CodingKeys: String, CodingKey {
                case type, text, stopReason = "stop_reason"
            }
        }

        struct ErrorBody: Decodable {
            var message: String?
        }

        var type: String
        var message: MessageStart?
        var contentBlock: ContentBlock?
        var delta: Delta?
        var usage: Usage?
        var error: ErrorBody?
        var invocationMetrics: ModelAdapters.InvocationMetrics?

        enum CodingKeys: String, CodingKey {
            case type, message, contentBlock = "content_block", delta, usage, error
            case invocationMetrics = "amazon-bedrock-invocationMetrics"
        }
    }
}

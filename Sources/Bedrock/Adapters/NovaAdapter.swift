import ChatCore
import Foundation

/// Amazon Nova on Bedrock (`schemaVersion: messages-v1`). Its bodies have the Converse API's shape, so
/// `ConverseAdapter` speaks through it without the schema version.
public struct NovaAdapter: ModelAdapter {
    /// `.amazonNova`, or the family of the model a `ConverseAdapter` speaks to.
    public let family: ModelFamily
    /// `messages-v1` for InvokeModel; nil for Converse, which has no such member.
    let schemaVersion: String?

    /// Creates the adapter.
    public init() {
        self.init(family: .amazonNova, schemaVersion: "messages-v1")
    }

    init(family: ModelFamily, schemaVersion: String?) {
        self.family = family
        self.schemaVersion = schemaVersion
    }

    /// The messages-v1 body: alternating turns starting with the user, optional fields left out when unset.
    /// Written by hand, keys sorted as `AdapterJSON.encode` sorts them (byte for byte what it wrote, checked by a
    /// test): `JSONEncoder` was a twentieth of the worker's time, growing with the history a request carries.
    public func requestBody(for request: GenerationRequest) throws -> Data {
        var json = #"{"inferenceConfig":{"maxTokens":"#
        json += String(request.maxTokens)
        if let stops = ModelAdapters.stopSequences(of: request) {
            json += #","stopSequences":"#
            ModelAdapters.appendJSONArray(of: stops, to: &json)
        }
        if let temperature = request.temperature { json += #","temperature":"# + (try ModelAdapters.jsonNumber(temperature, "temperature")) }
        if let topP = request.topP { json += #","topP":"# + (try ModelAdapters.jsonNumber(topP, "topP")) }
        json += #"},"messages":["#
        for (index, turn) in ModelAdapters.alternatingTurns(of: request).enumerated() {
            if index > 0 { json += "," }
            json += #"{"content":[{"text":""#
            JSONText.appendEscaped(turn.text, to: &json)
            json += #""}],"role":""#
            json += turn.role.rawValue
            json += #""}"#
        }
        json += "]"
        if let schemaVersion {
            json += #","schemaVersion":""#
            JSONText.appendEscaped(schemaVersion, to: &json)
            json += #"""#
        }
        if let system = ModelAdapters.systemPrompt(of: request) {
            json += #","system":[{"text":""#
            JSONText.appendEscaped(system, to: &json)
            json += #""}]"#
        }
        json += "}"
        return Data(json.utf8)
    }

    /// The same body through `JSONEncoder` (the hand-written one is checked against it).
    func encodedRequestBody(for request: GenerationRequest) throws -> Data {
        let messages = ModelAdapters.alternatingTurns(of: request).map {
            Message(role: $0.role.rawValue, content: [TextContent(text: $0.text)])
        }
        let config = InferenceConfig(
            maxTokens: request.maxTokens, temperature: request.temperature, topP: request.topP,
            stopSequences: ModelAdapters.stopSequences(of: request)
        )
        return try AdapterJSON.encode(
            Request(
                schemaVersion: schemaVersion, system: ModelAdapters.systemPrompt(of: request).map { [TextContent(text: $0)] },
                messages: messages, inferenceConfig: config
            )
        )
    }

    /// The text of `output.message.content` joined, `stopReason` and `usage`.
    public func parseResponse(_ body: Data) throws -> Completion {
        let response = try AdapterJSON.decode(Response.self, from: body, family: family)
        return Completion(
            text: response.output.message.content.compactMap(\.text).joined(),
            stopReason: response.stopReason.flatMap(Self.stopReason),
            usage: response.usage.flatMap { ModelAdapters.usage(input: $0.inputTokens, output: $0.outputTokens) }
        )
    }

    /// One stream chunk: text from `contentBlockDelta`, the reason from `messageStop`, totals from `metadata.usage`.
    public func parseChunk(_ chunk: Data) throws -> ChunkDelta {
        if let text = Self.plainTextDelta(chunk) { return ChunkDelta(text: text) }
        let event = try AdapterJSON.decode(StreamEvent.self, from: chunk, family: family)
        guard event.hasFields else { throw ModelResponseError(family: family, message: "empty chunk") }
        var delta = ChunkDelta(text: "", invocationMetrics: event.invocationMetrics?.usage)
        if let blockDelta = event.contentBlockDelta {
            // A delta without text is a non-text block (reasoning, tool use): nothing to show.
            delta.text = blockDelta.delta.text ?? ""
        }
        if let stop = event.messageStop {
            delta.stopReason = stop.stopReason.flatMap(Self.stopReason)
        }
        if let usage = event.metadata?.usage {
            delta.usage = ModelAdapters.usage(input: usage.inputTokens, output: usage.outputTokens)
        }
        return delta
    }

    /// The text of the commonest event, read without a JSON decoder: `{"contentBlockDelta":{...}}` whose members
    /// are `"delta":{"text":"..."}` and scalars (`contentBlockIndex`, ConverseStream's padding `p`), in any order,
    /// with a text free of `\u` escapes and no spaces between tokens. Anything else returns nil and goes through the
    /// decoder.
    static func plainTextDelta(_ chunk: Data) -> String? {
        chunk.withUnsafeBytes { raw -> String? in
            var scanner = JSONScanner(raw)
            guard scanner.expect(#"{"contentBlockDelta":{""#) else { return nil }
            var text: [UInt8]?
            while true {
                guard let key = scanner.stringBody(reserve: 16), JSONScanner.text(key) != nil, scanner.expect(":") else { return nil }
                if key.elementsEqual("delta".utf8) {
                    guard text == nil, scanner.expect(#"{"text":""#), let body = scanner.stringBody(), scanner.expect("}") else { return nil }
                    text = body
                } else if scanner.next == UInt8(ascii: "\"") {
                    _ = scanner.expect("\"")
                    guard let value = scanner.stringBody(reserve: 64), JSONScanner.text(value) != nil else { return nil }
                } else if !scanner.digits() {
                    return nil
                }
                if scanner.expect(",\"") { continue }
                guard scanner.expect("}}"), scanner.atEnd, let text else { return nil }
                return JSONScanner.text(text)
            }
        }
    }

    /// Nova's `stopReason` as a `StopReason`; nil for values with no counterpart (e.g. `tool_use`).
    static func stopReason(_ value: String) -> StopReason? {
        switch value {
        case "end_turn": .endTurn
        case "max_tokens": .maxTokens
        case "stop_sequence": .stopSequence
        case "content_filtered", "guardrail_intervened": .contentFiltered
        default: nil
        }
    }
}

// MARK: - Wire types

extension NovaAdapter {
    private struct Request: Encodable {
        var schemaVersion: String?
        var system: [TextContent]?
        var messages: [Message]
        var inferenceConfig: InferenceConfig
    }

    private struct InferenceConfig: Encodable {
        var maxTokens: Int
        var temperature: Double?
        var topP: Double?
        var stopSequences: [String]?
    }

    private struct Message: Encodable {
        var role: String
        var content: [TextContent]
    }

    private struct TextContent: Encodable {
        var text: String
    }

    private struct ContentBlock: Decodable {
        var text: String?
    }

    private struct Usage: Decodable {
        var inputTokens: Int?
        var outputTokens: Int?
    }

    private struct Response: Decodable {
        struct Output: Decodable {
            struct OutputMessage: Decodable {
                var content: [ContentBlock]
            }

            var message: OutputMessage
        }

        var output: Output
        var stopReason: String?
        var usage: Usage?
    }

    private struct StreamEvent: Decodable {
        struct BlockDelta: Decodable {
            var delta: ContentBlock
        }

        struct MessageStop: Decodable {
            var stopReason: String?
        }

        struct Metadata: Decodable {
            var usage: Usage?
        }

        /// Any key at all: each chunk names its event (`messageStart`, `contentBlockStop`, …), so `{}` is not a chunk.
        struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        enum CodingKeys: String, CodingKey {
            case contentBlockDelta, messageStop, metadata
            case invocationMetrics = "amazon-bedrock-invocationMetrics"
        }

        var contentBlockDelta: BlockDelta?
        var messageStop: MessageStop?
        var metadata: Metadata?
        var invocationMetrics: ModelAdapters.InvocationMetrics?
        var hasFields: Bool

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            contentBlockDelta = try container.decodeIfPresent(BlockDelta.self, forKey: .contentBlockDelta)
            messageStop = try container.decodeIfPresent(MessageStop.self, forKey: .messageStop)
            metadata = try container.decodeIfPresent(Metadata.self, forKey: .metadata)
            invocationMetrics = try container.decodeIfPresent(ModelAdapters.InvocationMetrics.self, forKey: .invocationMetrics)
            hasFields = try !decoder.container(keyedBy: AnyKey.self).allKeys.isEmpty
        }
    }
}

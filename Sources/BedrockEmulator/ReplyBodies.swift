import ChatCore
import Foundation

/// One model chunk of a response stream, before it is wrapped in an event frame.
struct ReplyChunk: Sendable {
    /// The model's JSON chunk; the last chunk of a stream gets `amazon-bedrock-invocationMetrics` appended.
    var body: JSONValue
    /// True when the chunk carries a word, so its sending is paced.
    var carriesWord: Bool
    /// The event type of a ConverseStream event (sent as its own frame); nil for an InvokeModel stream's chunk
    /// (wrapped as Bedrock's `chunk` event).
    var event: String? = nil
}

/// The bodies each model family sends for a reply: the InvokeModel JSON body and the stream's chunk sequence.
enum ReplyBodies {
    /// The InvokeModel body of `reply` from `model`, as that family writes it.
    static func invokeBody(_ reply: Reply, model: ModelInfo) -> JSONValue {
        let stop = stopReason(reply, family: model.family)
        switch model.family {
        case .anthropicClaude:
            return .object([
                ("id", .string(messageID())), ("type", .string("message")), ("role", .string("assistant")),
                ("model", .string(anthropicModelName(model.id))),
                ("content", .array([.object([("type", .string("text")), ("text", .string(reply.text))])])),
                ("stop_reason", stop), ("stop_sequence", .null),
                ("usage", .object([("input_tokens", .integer(reply.inputTokens)), ("output_tokens", .integer(reply.outputTokens))])),
            ])
        case .amazonNova:
            return .object([
                ("output", .object([("message", .object([
                    ("content", .array([.object([("text", .string(reply.text))])])), ("role", .string("assistant")),
                ]))])),
                ("stopReason", stop),
                ("usage", novaUsage(reply, total: true)),
            ])
        case .amazonTitan:
            return .object([
                ("inputTextTokenCount", .integer(reply.inputTokens)),
                ("results", .array([.object([
                    ("tokenCount", .integer(reply.outputTokens)), ("outputText", .string(reply.text)), ("completionReason", stop),
                ])])),
            ])
        case .metaLlama3:
            return llamaBody(text: reply.text, promptTokens: .integer(reply.inputTokens), generated: reply.outputTokens, stop: stop)
        case .mistral:
            return mistralBody(text: reply.text, stop: stop)
        }
    }

    /// The stream chunks of `reply` from `model`, in order; each word is its own chunk, the first without a
    /// leading space, later ones with one, so that the chunks' texts concatenate to the InvokeModel text.
    static func chunks(_ reply: Reply, model: ModelInfo) -> [ReplyChunk] {
        let stop = stopReason(reply, family: model.family)
        let pieces = reply.words.enumerated().map { $0.offset == 0 ? $0.element : " " + $0.element }
        func words(_ body: (Int, String) -> JSONValue) -> [ReplyChunk] {
            pieces.enumerated().map { ReplyChunk(body: body($0.offset, $0.element), carriesWord: true) }
        }
        func frame(_ body: JSONValue) -> ReplyChunk { ReplyChunk(body: body, carriesWord: false) }

        switch model.family {
        case .anthropicClaude:
            let message = JSONValue.object([
                ("id", .string(messageID())), ("type", .string("message")), ("role", .string("assistant")),
                ("model", .string(anthropicModelName(model.id))), ("content", .array([])), ("stop_reason", .null),
                ("stop_sequence", .null),
                ("usage", .object([("input_tokens", .integer(reply.inputTokens)), ("output_tokens", .integer(1))])),
            ])
            return [
                frame(.object([("type", .string("message_start")), ("message", message)])),
                frame(.object([
                    ("type", .string("content_block_start")), ("index", .integer(0)),
                    ("content_block", .object([("type", .string("text")), ("text", .string(""))])),
                ])),
            ] + words { _, text in
                .object([
                    ("type", .string("content_block_delta")), ("index", .integer(0)),
                    ("delta", .object([("type", .string("text_delta")), ("text", .string(text))])),
                ])
            } + [
                frame(.object([("type", .string("content_block_stop")), ("index", .integer(0))])),
                frame(.object([
                    ("type", .string("message_delta")),
                    ("delta", .object([("stop_reason", stop), ("stop_sequence", .null)])),
                    ("usage", .object([("output_tokens", .integer(reply.outputTokens))])),
                ])),
                frame(.object([("type", .string("message_stop"))])),
            ]
        case .amazonNova:
            return [frame(.object([("messageStart", .object([("role", .string("assistant"))]))]))]
                + words { _, text in
                    .object([("contentBlockDelta", .object([
                        ("delta", .object([("text", .string(text))])), ("contentBlockIndex", .integer(0)),
                    ]))])
                } + [
                    frame(.object([("contentBlockStop", .object([("contentBlockIndex", .integer(0))]))])),
                    frame(.object([("messageStop", .object([("stopReason", stop)]))])),
                    frame(.object([("metadata", .object([
                        ("usage", novaUsage(reply, total: false)), ("metrics", .object([])), ("trace", .object([])),
                    ]))])),
                ]
        case .amazonTitan:
            return wordChunks(pieces) { index, text, isLast in
                .object([
                    ("outputText", .string(text)), ("index", .integer(0)),
                    ("totalOutputTextTokenCount", isLast ? .integer(reply.outputTokens) : .null),
                    ("completionReason", isLast ? stop : .null),
                    ("inputTextTokenCount", index == 0 ? .integer(reply.inputTokens) : .null),
                ])
            }
        case .metaLlama3:
            return wordChunks(pieces) { index, text, isLast in
                llamaBody(
                    text: text, promptTokens: index == 0 ? .integer(reply.inputTokens) : .null,
                    generated: min(index + 1, reply.outputTokens), stop: isLast ? stop : .null
                )
            }
        case .mistral:
            return wordChunks(pieces) { _, text, isLast in mistralBody(text: text, stop: isLast ? stop : .null) }
        }
    }

    /// The model name Claude reports in `model`: the id without the `anthropic.` prefix and the `-v1:0` version.
    static func anthropicModelName(_ id: String) -> String {
        var name = id.hasPrefix("anthropic.") ? String(id.dropFirst("anthropic.".count)) : id
        if let version = name.range(of: #"-v\d+(:\d+)?$"#, options: .regularExpression) {
            name.removeSubrange(version)
        }
        return name
    }

    /// The family's spelling of end-turn or max-tokens.
    private static func stopReason(_ reply: Reply, family: ModelFamily) -> JSONValue {
        let cut = reply.cutByMaxTokens
        switch family {
        case .anthropicClaude, .amazonNova: return .string(cut ? "max_tokens" : "end_turn")
        case .amazonTitan: return .string(cut ? "LENGTH" : "FINISH")
        case .metaLlama3, .mistral: return .string(cut ? "length" : "stop")
        }
    }

    /// One chunk per piece (one empty chunk for an empty reply), built by `body(index, text, isLast)`.
    private static func wordChunks(_ pieces: [String], _ body: (Int, String, Bool) -> JSONValue) -> [ReplyChunk] {
        guard !pieces.isEmpty else { return [ReplyChunk(body: body(0, "", true), carriesWord: false)] }
        return pieces.enumerated().map { ReplyChunk(body: body($0.offset, $0.element, $0.offset == pieces.count - 1), carriesWord: true) }
    }

    private static func novaUsage(_ reply: Reply, total: Bool) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("inputTokens", .integer(reply.inputTokens)), ("outputTokens", .integer(reply.outputTokens)),
        ]
        if total { members.append(("totalTokens", .integer(reply.inputTokens + reply.outputTokens))) }
        members += [("cacheReadInputTokenCount", .integer(0)), ("cacheWriteInputTokenCount", .integer(0))]
        return .object(members)
    }

    private static func llamaBody(text: String, promptTokens: JSONValue, generated: Int, stop: JSONValue) -> JSONValue {
        .object([
            ("generation", .string(text)), ("prompt_token_count", promptTokens),
            ("generation_token_count", .integer(generated)), ("stop_reason", stop),
        ])
    }

    private static func mistralBody(text: String, stop: JSONValue) -> JSONValue {
        .object([("outputs", .array([.object([("text", .string(text)), ("stop_reason", stop)])]))])
    }

    /// A Bedrock-style Claude message id: `msg_bdrk_01` and 22 random letters and digits.
    private static func messageID() -> String {
        "msg_bdrk_01" + String((0..<22).map { _ in alphanumerics.randomElement()! })
    }

    /// Letters and digits, in the order AWS's stream padding takes its prefixes from.
    static let alphanumerics = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
}

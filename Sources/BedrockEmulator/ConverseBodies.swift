/// What the Converse API answers, the same for every model (botocore's `ConverseResponse` and
/// `ConverseStreamOutput`): the reply as one assistant message, `stopReason` `end_turn` or `max_tokens`, and usage.
enum ConverseBodies {
    /// The Converse response body of `reply`, `latencyMs` after the request arrived.
    static func response(_ reply: Reply, latencyMs: Int) -> JSONValue {
        .object([
            (
                "output",
                .object([
                    ("message", .object([("role", .string("assistant")), ("content", .array([.object([("text", .string(reply.text))])]))]))
                ])
            ),
            ("stopReason", stopReason(reply)),
            ("usage", usage(reply)),
            ("metrics", .object([("latencyMs", .integer(latencyMs))])),
        ])
    }

    /// The ConverseStream events of `reply`: `messageStart`, `contentBlockDelta` per word, `contentBlockStop`,
    /// `messageStop`, then `metadata` (its latency filled in when it is sent).
    static func events(_ reply: Reply) -> [ReplyChunk] {
        let pieces = reply.words.enumerated().map { $0.offset == 0 ? $0.element : " " + $0.element }
        var events = [ReplyChunk(body: .object([("role", .string("assistant"))]), carriesWord: false, event: "messageStart")]
        events += pieces.map { piece in
            ReplyChunk(
                body: .object([("delta", .object([("text", .string(piece))])), ("contentBlockIndex", .integer(0))]), carriesWord: true,
                event: "contentBlockDelta"
            )
        }
        events.append(ReplyChunk(body: .object([("contentBlockIndex", .integer(0))]), carriesWord: false, event: "contentBlockStop"))
        events.append(ReplyChunk(body: .object([("stopReason", stopReason(reply))]), carriesWord: false, event: "messageStop"))
        events.append(ReplyChunk(body: metadata(reply, latencyMs: 0), carriesWord: false, event: "metadata"))
        return events
    }

    /// The `metadata` event: usage and the latency so far.
    static func metadata(_ reply: Reply, latencyMs: Int) -> JSONValue {
        .object([("usage", usage(reply)), ("metrics", .object([("latencyMs", .integer(latencyMs))]))])
    }

    private static func stopReason(_ reply: Reply) -> JSONValue {
        .string(reply.cutByMaxTokens ? "max_tokens" : "end_turn")
    }

    private static func usage(_ reply: Reply) -> JSONValue {
        .object([
            ("inputTokens", .integer(reply.inputTokens)), ("outputTokens", .integer(reply.outputTokens)),
            ("totalTokens", .integer(reply.inputTokens + reply.outputTokens)),
        ])
    }
}

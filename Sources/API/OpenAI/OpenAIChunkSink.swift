import ChatCore
import Foundation
import Hummingbird
import NIOCore

/// Writes a job's events as OpenAI's streamed completion: a first chunk with the assistant's role, one chunk per
/// `chunk` event, a last chunk with the finish reason, the usage chunk when asked (`stream_options.include_usage`),
/// then `data: [DONE]`. An `error` event becomes `data: {"error": {...}}`, which OpenAI's clients raise. A `model`
/// event naming a fallback changes the `model` of the chunks that follow; a `reset` before any text is passed over,
/// after some text it ends the stream with an error (the text already sent cannot be taken back).
struct OpenAIChunkSink: EventSink {
    var writer: any ResponseBodyWriter
    let id: String
    let created: Int
    var model: String
    let includeUsage: Bool
    /// Whether the role chunk, and whether any text, went out.
    private var started = false
    private var sentText = false
    /// Whether the stream is over (its last chunk and `[DONE]`, or an error, written).
    private(set) var ended = false

    init(writer: any ResponseBodyWriter, id: String, created: Int, model: String, includeUsage: Bool) {
        self.writer = writer
        self.id = id
        self.created = created
        self.model = model
        self.includeUsage = includeUsage
    }

    mutating func write(id eventID: String?, event: String, data: String) async throws {
        guard !ended else { return }
        let fields = (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:]
        switch event {
        case "model":
            if let model = fields["modelId"] as? String { self.model = model }
        case "chunk":
            try await start()
            guard let text = fields["content"] as? String, !text.isEmpty else { return }
            sentText = true
            try await send(chunk([.init(delta: .init(content: text))]))
        case "complete":
            try await start()
            if let model = fields["modelId"] as? String { self.model = model }
            try await send(chunk([.init(delta: .init(), finish_reason: FinishReason.from(stopReason: fields["stopReason"] as? String))]))
            if includeUsage {
                var last = chunk([])
                last.usage = CompletionUsage(input: fields["inputTokens"] as? Int ?? 0, output: fields["outputTokens"] as? Int ?? 0)
                try await send(last)
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            ended = true
        case "error":
            let code = fields["code"] as? String ?? "GENERATION_FAILED"
            try await fail(status: code == "CLIENT_TOO_SLOW" ? 429 : 502, code: code, message: fields["message"] as? String ?? "The reply could not be generated")
        case "reset":
            if sentText {
                try await fail(
                    status: 502, code: "REPLY_RESTARTED",
                    message: "The reply was restarted after a worker failure and cannot be continued on this stream; ask again"
                )
            }
        default:
            break
        }
    }

    mutating func heartbeat() async throws {
        try await writer.write(SSEEventSink.heartbeatFrame)
    }

    /// Ends the stream with an error object, OpenAI's way.
    mutating func fail(status: Int, code: String, message: String) async throws {
        let body = OpenAIErrorBody(status: status, code: code, message: message)
        try await writer.write(ByteBuffer(string: "data: " + Self.json(body) + "\n\n"))
        ended = true
    }

    private mutating func start() async throws {
        guard !started else { return }
        started = true
        try await send(chunk([.init(delta: .init(role: "assistant", content: ""))]))
    }

    private func chunk(_ choices: [ChatCompletionChunk.Choice]) -> ChatCompletionChunk {
        ChatCompletionChunk(id: id, created: created, model: model, choices: choices)
    }

    private mutating func send(_ chunk: ChatCompletionChunk) async throws {
        try await writer.write(ByteBuffer(string: "data: " + Self.json(chunk) + "\n\n"))
    }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

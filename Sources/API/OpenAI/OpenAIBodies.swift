import ChatCore
import Foundation

/// `POST /v1/chat/completions` as OpenAI's clients send it. Only what the service can honour is read; fields it
/// cannot (tools, several choices, images) are refused by name, and the rest of OpenAI's options are ignored.
struct ChatCompletionRequest: RequestBody {
    /// Conversations up to 2 MiB of JSON (the server's largest body): the whole history comes with every request.
    static var maxBodyBytes: Int { 2 * 1024 * 1024 }
    /// The most messages a request may carry.
    static let maxMessages = 500

    /// One message: `content` a string or a list of `{type: "text", text}` parts.
    struct Message: Decodable {
        var role: String
        var content: Content?

        enum Content: Decodable {
            case text(String)
            case parts([Part])

            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let text = try? container.decode(String.self) {
                    self = .text(text)
                } else {
                    self = .parts(try container.decode([Part].self))
                }
            }
        }

        struct Part: Decodable {
            var type: String
            var text: String?
        }
    }

    /// `stop`: one sequence or a list.
    enum Stop: Decodable {
        case one(String)
        case many([String])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(String.self) { self = .one(one) } else { self = .many(try container.decode([String].self)) }
        }

        var sequences: [String] {
            switch self {
            case .one(let sequence): [sequence]
            case .many(let sequences): sequences
            }
        }
    }

    struct StreamOptions: Decodable {
        var include_usage: Bool?
    }

    var model: String?
    var messages: [Message]?
    var stream: Bool?
    var stream_options: StreamOptions?
    var max_tokens: Int?
    var max_completion_tokens: Int?
    var temperature: Double?
    var top_p: Double?
    var stop: Stop?
    var n: Int?
    var tools: [JSONValue]?
    var functions: [JSONValue]?

    /// What the request asks, read and checked: the model id, the system prompt (its `system` and `developer`
    /// messages), the earlier turns, the last user message and the sampling settings (400 naming the field).
    struct Conversation {
        var model: String
        var system: String?
        var earlier: [(role: MessageRole, text: String)]
        var message: String
        var settings: InferenceSettings?
        var streaming: Bool
        var includeUsage: Bool
        /// The name the request gave its token limit, for errors about it.
        var maxTokensName: String

        /// A settings message in OpenAI's field names.
        func openAINames(_ message: String) -> String {
            Self.names(message, maxTokens: maxTokensName)
        }

        /// `message` with the service's setting names replaced by OpenAI's (`maxTokens` by `maxTokens`'s name).
        static func names(_ message: String, maxTokens: String) -> String {
            message.replacingOccurrences(of: "maxTokens", with: maxTokens).replacingOccurrences(of: "topP", with: "top_p")
                .replacingOccurrences(of: "stopSequences", with: "stop")
        }

        /// The earlier turns the model can use, newest kept: at most about four bytes a token of `contextWindow`,
        /// so that a request cannot store more history than its model will ever read.
        func earlier(within contextWindow: Int) -> [(role: MessageRole, text: String)] {
            var budget = contextWindow * 4 - message.utf8.count
            var kept: [(role: MessageRole, text: String)] = []
            for turn in earlier.reversed() {
                budget -= turn.text.utf8.count
                guard budget >= 0 else { break }
                kept.append(turn)
            }
            return kept.reversed()
        }
    }

    func validated() throws -> ChatCompletionRequest { self }

    /// The conversation, or a 400 naming what is wrong.
    func conversation() throws -> Conversation {
        func invalid(_ message: String) -> ChatError { ChatError(.badRequest, code: "VALIDATION_ERROR", message: message) }
        guard let model = model?.trimmingCharacters(in: .whitespaces), !model.isEmpty else { throw invalid("model is required") }
        guard let messages, !messages.isEmpty else { throw invalid("messages must be a non-empty list") }
        guard messages.count <= Self.maxMessages else { throw invalid("messages may hold at most \(Self.maxMessages) messages") }
        guard (n ?? 1) == 1 else { throw invalid("n must be 1: one choice per request") }
        guard tools == nil, functions == nil else { throw invalid("tools and functions are not supported") }
        var system: [String] = []
        var turns: [(role: MessageRole, text: String)] = []
        for (index, message) in messages.enumerated() {
            let text: String
            switch message.content {
            case .text(let value)?: text = value
            case .parts(let parts)?:
                guard parts.allSatisfy({ $0.type == "text" && $0.text != nil }) else {
                    throw invalid("messages[\(index)].content: only text parts are supported")
                }
                text = parts.compactMap(\.text).joined(separator: "\n")
            case nil: text = ""
            }
            try TextField.checkSize(text, "messages[\(index)].content", maxBytes: SessionController.maxMessageBytes)
            switch message.role {
            case "system", "developer":
                if !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { system.append(text) }
            case "user": turns.append((.user, text))
            case "assistant": turns.append((.assistant, text))
            default: throw invalid("messages[\(index)].role must be system, developer, user or assistant (got \(message.role))")
            }
        }
        guard let last = turns.last, last.role == .user, !last.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw invalid("the last message must be a user message with text")
        }
        let systemPrompt = system.joined(separator: "\n\n")
        try TextField.checkSize(systemPrompt, "the system messages", maxBytes: SessionController.maxSystemPromptBytes)
        var settings = InferenceSettings(
            temperature: temperature, topP: top_p, maxTokens: max_completion_tokens ?? max_tokens, stopSequences: stop?.sequences
        )
        let maxTokensName = max_completion_tokens != nil ? "max_completion_tokens" : "max_tokens"
        do {
            try settings.validate()
        } catch let error as ChatError {
            throw ChatError(error.kind, code: error.code, message: Conversation.names(error.message, maxTokens: maxTokensName))
        }
        if settings.stopSequences?.isEmpty == true { settings.stopSequences = nil }
        return Conversation(
            model: model, system: systemPrompt.isEmpty ? nil : systemPrompt, earlier: Array(turns.dropLast()), message: last.text,
            settings: settings.isEmpty ? nil : settings, streaming: stream ?? false, includeUsage: stream_options?.include_usage ?? false,
            maxTokensName: maxTokensName
        )
    }
}

/// Why a completion ended, in OpenAI's words.
enum FinishReason {
    /// `length` for a reply cut at its token limit, `content_filter` for one a guardrail stopped, else `stop`.
    static func from(stopReason: String?) -> String {
        switch stopReason {
        case "max_tokens": "length"
        case "content_filtered", "guardrail_intervened": "content_filter"
        default: "stop"
        }
    }
}

/// Token counts in OpenAI's shape.
struct CompletionUsage: Encodable {
    var prompt_tokens: Int
    var completion_tokens: Int
    var total_tokens: Int

    init(input: Int, output: Int) {
        prompt_tokens = input
        completion_tokens = output
        total_tokens = input + output
    }
}

/// A whole completion (`stream` false).
struct ChatCompletion: Encodable {
    struct Choice: Encodable {
        struct Message: Encodable {
            var role = "assistant"
            var content: String
            var refusal: String? = nil

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(role, forKey: .role)
                try container.encode(content, forKey: .content)
                try container.encode(refusal, forKey: .refusal)
            }

            enum CodingKeys: String, CodingKey { case role, content, refusal }
        }

        var index = 0
        var message: Message
        var finish_reason: String
    }

    var id: String
    var object = "chat.completion"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: CompletionUsage
}

/// One piece of a streamed completion.
struct ChatCompletionChunk: Encodable {
    struct Choice: Encodable {
        struct Delta: Encodable {
            var role: String?
            var content: String?
        }

        var index = 0
        var delta: Delta
        var finish_reason: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(index, forKey: .index)
            try container.encode(delta, forKey: .delta)
            try container.encode(finish_reason, forKey: .finish_reason)
        }

        enum CodingKeys: String, CodingKey { case index, delta, finish_reason }
    }

    var id: String
    var object = "chat.completion.chunk"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: CompletionUsage?
}

/// `GET /v1/models` and one of its entries.
struct OpenAIModelList: Encodable {
    struct Model: Encodable {
        var id: String
        var object = "model"
        var created = 0
        var owned_by: String

        init(_ model: ModelInfo) {
            id = model.id
            owned_by = String(model.id.prefix { $0 != "." })
        }
    }

    var object = "list"
    var data: [Model]
}

/// An error as OpenAI's clients read it: `{"error": {"message", "type", "param", "code"}}`.
struct OpenAIErrorBody: Encodable {
    struct Detail: Encodable {
        var message: String
        var type: String
        var param: String?
        var code: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(message, forKey: .message)
            try container.encode(type, forKey: .type)
            try container.encode(param, forKey: .param)
            try container.encode(code, forKey: .code)
        }

        enum CodingKeys: String, CodingKey { case message, type, param, code }
    }

    var error: Detail

    /// The body for an error the service describes with `status`, its own `code` and `message`.
    init(status: Int, code: String, message: String) {
        let type: String
        var openAICode = code.lowercased()
        var param: String?
        switch status {
        case 400: type = "invalid_request_error"
        case 401: type = "invalid_request_error"; openAICode = "invalid_api_key"
        case 402: type = "insufficient_quota"; openAICode = "insufficient_quota"
        case 403: type = "permission_error"
        case 404 where code == "MODEL_NOT_FOUND": type = "invalid_request_error"; openAICode = "model_not_found"; param = "model"
        case 404: type = "invalid_request_error"
        case 429: type = "requests"; openAICode = "rate_limit_exceeded"
        default: type = status >= 500 ? "server_error" : "invalid_request_error"
        }
        error = Detail(message: message, type: type, param: param, code: openAICode)
    }
}

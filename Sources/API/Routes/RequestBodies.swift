import ChatCore
import Foundation
import Hummingbird

/// The JSON bodies the API accepts, decoded with `decodeBody`; each names its size and its fields' limits.
protocol RequestBody: Decodable {
    /// The largest body of this kind read, in bytes (413 beyond); well under the server's global limit.
    static var maxBodyBytes: Int { get }
    /// The body with its text fields trimmed and checked (400 naming the field).
    func validated() throws -> Self
}

extension RequestBody {
    /// 16 KiB: room for every body but those that carry a message.
    static var maxBodyBytes: Int { 16 * 1024 }
}

/// The body limit of the routes that carry a message: room for `maxMessageBytes` of text written as JSON
/// escapes where a client escapes what is not ASCII (`\uXXXX` is at most three times the UTF-8 bytes of such a
/// character), plus the other fields. A client that escapes ASCII too may need to send shorter messages.
private let messageBodyBytes = 3 * (SessionController.maxMessageBytes + SessionController.maxSystemPromptBytes) + 16 * 1024

extension Request {
    /// Reads and decodes the body as `T`, then validates it. Empty, not JSON (invalid UTF-8 and nesting deeper than
    /// the decoder's limit included), not an object, a field of the wrong type: 400 with a message naming what is
    /// wrong. Larger than `T.maxBodyBytes`: 413.
    func decodeBody<T: RequestBody>(_ type: T.Type, context: ChatRequestContext) async throws -> T {
        let buffer = try await body.collect(upTo: min(T.maxBodyBytes, context.maxUploadSize))
        guard buffer.readableBytes > 0 else {
            throw ChatError(.badRequest, code: "INVALID_BODY", message: "The request body must be a JSON object")
        }
        do {
            return try JSONDecoder().decode(T.self, from: buffer).validated()
        } catch let error as DecodingError {
            throw Self.describe(error)
        }
    }

    private static func describe(_ error: DecodingError) -> ChatError {
        switch error {
        case .typeMismatch(let type, let context) where !context.codingPath.isEmpty:
            let field = CodingPathText.of(context.codingPath)
            let expected = type == String.self ? "a string" : type == Int.self ? "an integer" : "of another type"
            return ChatError(.badRequest, code: "VALIDATION_ERROR", message: "\(field) must be \(expected)")
        default:
            return ChatError(.badRequest, code: "INVALID_JSON", message: "The request body is not valid JSON")
        }
    }
}

/// Checks of one text field.
enum TextField {
    /// `value` trimmed; nil when absent or blank and not required; 400 when required and missing, longer than
    /// `maxBytes` UTF-8 bytes, or (when given) than `maxCharacters` characters.
    static func check(_ value: String?, _ name: String, required: Bool, maxBytes: Int, maxCharacters: Int? = nil) throws -> String? {
        let trimmed = value?.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let trimmed, !trimmed.isEmpty else {
            if required {
                throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: value == nil ? "\(name) is required" : "\(name) must not be empty")
            }
            return nil
        }
        try checkSize(trimmed, name, maxBytes: maxBytes, maxCharacters: maxCharacters)
        return trimmed
    }

    /// 400 when `text` is longer than `maxBytes` UTF-8 bytes or (when given) `maxCharacters` characters. The bytes
    /// are counted first, so a huge text is never walked character by character.
    static func checkSize(_ text: String, _ name: String, maxBytes: Int, maxCharacters: Int? = nil) throws {
        let limits = maxCharacters.map { "\($0) characters and \(maxBytes) bytes" } ?? "\(maxBytes) bytes"
        guard text.utf8.count <= maxBytes, maxCharacters.map({ text.count <= $0 }) ?? true else {
            throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "\(name) must be at most \(limits) of UTF-8 text")
        }
    }
}

/// `POST /api/chat/sessions`.
struct CreateSessionBody: RequestBody {
    static var maxBodyBytes: Int { messageBodyBytes }
    var title: String?
    var modelId: String?
    var initialMessage: String?
    /// Instructions the model is given before every turn of the session.
    var systemPrompt: String?

    func validated() throws -> CreateSessionBody {
        CreateSessionBody(
            title: try TextField.check(
                title, "title", required: true, maxBytes: SessionController.maxTitleBytes, maxCharacters: SessionController.maxTitleLength
            ),
            modelId: try TextField.check(modelId, "modelId", required: false, maxBytes: 200),
            initialMessage: try TextField.check(initialMessage, "initialMessage", required: false, maxBytes: SessionController.maxMessageBytes),
            systemPrompt: try TextField.check(systemPrompt, "systemPrompt", required: false, maxBytes: SessionController.maxSystemPromptBytes)
        )
    }
}

/// `POST .../stream` and `POST .../messages`.
struct MessageBody: RequestBody {
    static var maxBodyBytes: Int { messageBodyBytes }
    var message: String?
    var modelId: String?
    /// Sampling settings for this reply (each optional; see `InferenceSettings`).
    var temperature: Double?
    var topP: Double?
    var maxTokens: Int?
    var stopSequences: [String]?

    /// The body's sampling settings; nil when it gives none.
    var settings: InferenceSettings? {
        let settings = InferenceSettings(temperature: temperature, topP: topP, maxTokens: maxTokens, stopSequences: stopSequences)
        return settings.isEmpty ? nil : settings
    }

    func validated() throws -> MessageBody {
        var body = self
        body.message = try TextField.check(message, "message", required: true, maxBytes: SessionController.maxMessageBytes)
        body.modelId = try TextField.check(modelId, "modelId", required: false, maxBytes: 200)
        try settings?.validate()
        return body
    }
}

/// `POST .../update-stream` (the guide's clients send more; only the job id is read).
struct UpdateStreamBody: RequestBody {
    var streamingSessionId: String?

    func validated() throws -> UpdateStreamBody {
        UpdateStreamBody(streamingSessionId: try TextField.check(streamingSessionId, "streamingSessionId", required: false, maxBytes: 200))
    }
}

/// `POST /api/models/recommend`.
struct RecommendBody: RequestBody {
    var task: String?
    var priority: String?

    func validated() throws -> RecommendBody {
        RecommendBody(
            task: try TextField.check(task, "task", required: true, maxBytes: 2_000, maxCharacters: 500),
            priority: try TextField.check(priority, "priority", required: false, maxBytes: 20)
        )
    }
}

import ChatCore
import Foundation
import Hummingbird

/// The JSON bodies the API accepts, decoded with `decodeBody`; each names its fields' limits in `validated()`.
protocol RequestBody: Decodable {
    /// The body with its text fields trimmed and checked (400 naming the field).
    func validated() throws -> Self
}

extension Request {
    /// Reads and decodes the body as `T`, then validates it. Empty, not JSON, not an object, a field of the
    /// wrong type: 400 with a message naming what is wrong. Too large: 413.
    func decodeBody<T: RequestBody>(_ type: T.Type, context: ChatRequestContext) async throws -> T {
        let buffer = try await body.collect(upTo: context.maxUploadSize)
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
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            let expected = type == String.self ? "a string" : type == Int.self ? "an integer" : "of another type"
            return ChatError(.badRequest, code: "VALIDATION_ERROR", message: "\(field) must be \(expected)")
        default:
            return ChatError(.badRequest, code: "INVALID_JSON", message: "The request body is not valid JSON")
        }
    }
}

/// Checks of one text field.
enum TextField {
    /// `value` trimmed; nil when absent or blank and not required; 400 when required and missing, or longer
    /// than `maxLength` characters.
    static func check(_ value: String?, _ name: String, required: Bool, maxLength: Int) throws -> String? {
        let trimmed = value?.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let trimmed, !trimmed.isEmpty else {
            if required {
                throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: value == nil ? "\(name) is required" : "\(name) must not be empty")
            }
            return nil
        }
        guard trimmed.count <= maxLength else {
            throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "\(name) must be at most \(maxLength) characters")
        }
        return trimmed
    }
}

/// `POST /api/chat/sessions`.
struct CreateSessionBody: RequestBody {
    var title: String?
    var modelId: String?
    var initialMessage: String?

    func validated() throws -> CreateSessionBody {
        CreateSessionBody(
            title: try TextField.check(title, "title", required: true, maxLength: SessionController.maxTitleLength),
            modelId: try TextField.check(modelId, "modelId", required: false, maxLength: 200),
            initialMessage: try TextField.check(initialMessage, "initialMessage", required: false, maxLength: SessionController.maxMessageLength)
        )
    }
}

/// `POST .../stream` and `POST .../messages`.
struct MessageBody: RequestBody {
    var message: String?
    var modelId: String?

    func validated() throws -> MessageBody {
        MessageBody(
            message: try TextField.check(message, "message", required: true, maxLength: SessionController.maxMessageLength),
            modelId: try TextField.check(modelId, "modelId", required: false, maxLength: 200)
        )
    }
}

/// `POST .../update-stream` (the guide's clients send more; only the job id is read).
struct UpdateStreamBody: RequestBody {
    var streamingSessionId: String?

    func validated() throws -> UpdateStreamBody {
        UpdateStreamBody(streamingSessionId: try TextField.check(streamingSessionId, "streamingSessionId", required: false, maxLength: 200))
    }
}

/// `POST /api/models/recommend`.
struct RecommendBody: RequestBody {
    var task: String?
    var priority: String?

    func validated() throws -> RecommendBody {
        RecommendBody(
            task: try TextField.check(task, "task", required: true, maxLength: 500),
            priority: try TextField.check(priority, "priority", required: false, maxLength: 20)
        )
    }
}

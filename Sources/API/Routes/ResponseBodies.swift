import ChatCore
import ChatState
import Foundation
import Hummingbird

extension Response {
    /// A JSON response from a Codable body (keys sorted, slashes not escaped).
    static func json(status: HTTPResponse.Status, _ body: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(body)) ?? Data("{}".utf8)
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}

/// Every error answer: what went wrong, a stable code, the request id, and the job where there is one.
struct ErrorBody: Encodable {
    var message: String
    var code: String
    var requestId: String?
    var jobId: String?
}

/// A short acknowledgement naming the session (and the job, where one is concerned).
struct NoticeBody: Encodable {
    var message: String
    var sessionId: String
    var jobId: String?
}

/// A message as the API shows it.
struct MessageView: Encodable {
    var messageId: String
    var sessionId: String
    var jobId: String
    var role: MessageRole
    var content: String
    var status: MessageStatus
    var createdAt: String
    var modelId: String?
    var inputTokens: Int?
    var outputTokens: Int?

    init(_ message: ChatMessage) {
        messageId = message.id
        sessionId = message.sessionId
        jobId = message.jobId
        role = message.role
        content = message.content
        status = message.status
        createdAt = Timestamp.text(message.createdAt)
        modelId = message.modelId
        inputTokens = message.inputTokens
        outputTokens = message.outputTokens
    }
}

/// A session as the API shows it; with its messages on `GET /sessions/:id`.
struct SessionView: Encodable {
    var sessionId: String
    var userId: String
    var title: String
    var modelId: String
    /// The session's system prompt, when it has one.
    var systemPrompt: String?
    var messageCount: Int
    var createdAt: String
    var updatedAt: String
    var messages: [MessageView]?
    /// With `messages`: the `before` of `GET .../messages` for the messages older than these, if there are any.
    var olderMessagesCursor: String?
    /// The job of the session's initial message, when one was sent on create.
    var initialJobId: String?
    /// The job generating now (on `GET /sessions/:id` and in supervisors' list of active sessions).
    var activeJobId: String?

    init(_ session: ChatSession, messages: [ChatMessage]? = nil, defaultModelID: String) {
        sessionId = session.id
        userId = session.userId
        title = session.title
        modelId = session.modelId ?? defaultModelID
        systemPrompt = session.systemPrompt
        messageCount = session.messageCount
        createdAt = Timestamp.text(session.createdAt)
        updatedAt = Timestamp.text(session.updatedAt)
        self.messages = messages?.map(MessageView.init)
    }
}

/// `GET /api/chat/sessions`.
struct SessionListBody: Encodable {
    struct Pagination: Encodable {
        var page: Int
        var limit: Int
        var total: Int
        var pages: Int
    }

    var sessions: [SessionView]
    var pagination: Pagination
}

/// `GET /api/chat/sessions/:id/messages`.
struct MessagesBody: Encodable {
    var sessionId: String
    var messages: [MessageView]
    /// The `before` of the page of older messages; absent on the oldest page.
    var nextCursor: String?
}

/// `GET /api/chat/sessions/active`.
struct ActiveSessionsBody: Encodable {
    var sessions: [SessionView]
    var count: Int
}

/// The first event of an observer's stream.
struct ObserverGreeting: Encodable {
    var sessionId: String
    var ownerId: String
    var observerId: String
    var observerRole: UserRole
    var activeJobId: String?
}

/// `202` of `Prefer: respond-async`.
struct AcceptedJobBody: Encodable {
    var jobId: String
    var sessionId: String
    var status: JobStatus
}

/// `200` of `POST /messages`: the `complete` event's body as `reply`, as the worker wrote it.
struct ReplyBody: Encodable {
    var message = "success"
    var sessionId: String
    var jobId: String
    var reply: JSONValue
}

/// `GET /api/jobs/:jobId`.
struct JobBody: Encodable {
    var jobId: String
    var sessionId: String
    var status: JobStatus
    var modelId: String
    var attempt: Int
    /// The `complete` event's body as the worker wrote it.
    var result: JSONValue?
    /// The `error` event's body, or a line of text for a job that never ran.
    var error: JSONValue?

    init(_ record: JobRecord) {
        jobId = record.jobID
        sessionId = record.sessionID
        status = record.status
        modelId = record.modelID
        attempt = record.attempt
        result = record.result.map { JSONValue(text: $0) ?? .string($0) }
        error = record.error.map { JSONValue(text: $0) ?? .string($0) }
    }
}

/// A model as `/api/models` shows it.
struct ModelView: Encodable {
    struct Pricing: Encodable {
        var inputCreditsPer1K: Double
        var outputCreditsPer1K: Double
    }

    var id: String
    var name: String
    var family: String
    var provider: String
    var contextWindow: Int
    var maxOutputTokens: Int
    var pricing: Pricing
    var api: String
    var recommendation: ModelTraits
    var fallbacks: [String]

    /// The model as `role` sees it: only the fallbacks `role` could pick itself are named.
    init(_ model: ModelInfo, catalog: ModelCatalog, role: UserRole) {
        api = model.api.rawValue
        recommendation = model.traits
        fallbacks = model.fallbacks.filter { catalog.selectable(id: $0, role: role) != nil }
        id = model.id
        name = model.name
        family = model.family.rawValue
        provider = String(model.id.prefix { $0 != "." })
        contextWindow = model.contextWindow
        maxOutputTokens = model.maxOutputTokens
        pricing = Pricing(inputCreditsPer1K: model.inputCreditsPer1K, outputCreditsPer1K: model.outputCreditsPer1K)
    }
}

/// `GET /api/models`.
struct ModelsBody: Encodable {
    var models: [ModelView]
    var defaultModelId: String
}

/// `POST /api/models/recommend`.
struct RecommendationBody: Encodable {
    var recommendedModel: ModelView
    var reason: String
    var alternatives: [ModelView]
    var priority: String
}

/// `/livez`, `/readyz` and `/api/health`.
struct HealthBody: Encodable {
    var status: String
    var service: String?
    var version: String?
    var uptimeSeconds: Int?
    var timestamp: String?
    var dependencies: [String: String]?
}

/// Times as the API writes them: ISO 8601 with milliseconds.
enum Timestamp {
    static func text(_ date: Date) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
    }
}

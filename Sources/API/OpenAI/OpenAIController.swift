import Accounting
import ChatCore
import ChatState
import Foundation
import Hummingbird

/// The OpenAI-compatible API, for the clients people already have (OpenAI's SDKs, chat front ends that take a
/// custom endpoint): `POST /v1/chat/completions` and `GET /v1/models`, with the same bearer JWT. A completion goes
/// the service's one way: its conversation becomes a session of the caller's (the system messages its system
/// prompt, the earlier turns stored as its history), the last user message a job on the queue with its credits
/// reserved, and the job's events are relayed as OpenAI's chunks or waited for as one completion. Supervisors
/// observe and read such a session as any other (`X-Chat-Session-Id` names it). Errors come in OpenAI's shape.
struct OpenAIController: Sendable {
    let starter: GenerationStarter
    let relay: EventRelay
    let store: any SessionStore
    let cache: SessionCache
    /// How long a completion without `stream` waits for its reply.
    let messageWait: Duration
    let limits: StreamLimits

    /// 404 for a model the catalog does not have, or the caller may not use (OpenAI's wording).
    static func modelNotFound(_ id: String) -> ChatError {
        ChatError(.notFound, code: "MODEL_NOT_FOUND", message: "The model `\(id)` does not exist or you do not have access to it.")
    }

    func register(on group: RouterGroup<ChatRequestContext>) {
        group.post("/chat/completions", use: completions)
        group.get("/models", use: models)
        group.get("/models/:model", use: model)
    }

    @Sendable func models(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        return Response.json(status: .ok, OpenAIModelList(data: starter.catalog.models(for: user.role).map(OpenAIModelList.Model.init)))
    }

    @Sendable func model(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let id = try context.parameters.require("model")
        guard let model = starter.catalog.selectable(id: id, role: user.role) else { throw Self.modelNotFound(id) }
        return Response.json(status: .ok, OpenAIModelList.Model(model))
    }

    @Sendable func completions(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let token = try context.requireToken()
        let conversation = try await request.decodeBody(ChatCompletionRequest.self, context: context).conversation()
        guard let model = starter.catalog.selectable(id: conversation.model, role: user.role) else { throw Self.modelNotFound(conversation.model) }
        // Nothing is written for a caller without credits (the reservation below is the real check).
        guard try await starter.ledger.hasCredits(1, token: token) else { throw AccountingClient.insufficient }
        // A waiting or streaming completion holds a connection, and counts as a stream.
        let lease = try await limits.open(.streams, userID: user.id, id: RandomID.uuidString())
        let record: JobRecord
        do {
            record = try await start(conversation, model: model, user: user, token: token, context: context)
        } catch let error as ChatError where error.kind == .badRequest {
            await lease.release()
            throw ChatError(error.kind, code: error.code, message: conversation.openAINames(error.message))
        } catch {
            await lease.release()
            throw error
        }
        let id = "chatcmpl-" + record.jobID
        let created = Int(Date().timeIntervalSince1970)
        var headers = conversation.streaming ? EventRelay.headers : [:]
        headers[.init("X-Chat-Session-Id")!] = record.sessionID
        headers[.init("X-Chat-Job-Id")!] = record.jobID
        guard conversation.streaming else {
            do {
                return try await lease.hold { try await whole(record, id: id, created: created, model: model.id, headers: headers) }
            } catch let error as ChatError where error.kind == .timeout || error.kind == .badGateway {
                throw error
            } catch {
                // The job runs (or ran): whatever failed now is answered 502 with `x-should-retry: false`, for a client
                // asking again would buy another reply; the job's outcome is at /api/jobs/{id}.
                throw ChatError(
                    .badGateway, code: "REPLY_UNREADABLE",
                    message: "The reply's outcome could not be read now; it will be saved when done (job \(record.jobID))"
                )
            }
        }
        return Response(
            status: .ok, headers: headers,
            body: lease.responseBody { [relay] lease, writer in
                var sink = OpenAIChunkSink(writer: writer, id: id, created: created, model: model.id, includeUsage: conversation.includeUsage)
                let end = try await lease.hold {
                    try await relay.relayJob(sessionID: record.sessionID, jobID: record.jobID, after: record.startEventID, to: &sink)
                }
                if !sink.ended, end == .shutdown {
                    try await sink.fail(status: 503, code: "SHUTTING_DOWN", message: "This server is stopping; the reply will be saved when done")
                }
                try await writer.finish(nil)
            }
        )
    }

    /// Opens the conversation's session and starts its job. Whatever fails after the session was made takes the
    /// session with it, so a client that tries again leaves no trail.
    private func start(
        _ conversation: ChatCompletionRequest.Conversation, model: ModelInfo, user: AuthenticatedUser, token: String, context: ChatRequestContext
    ) async throws -> JobRecord {
        // The title: the message's first 60 Unicode scalars (a character may hide any number of combining marks).
        let title = String(String.UnicodeScalarView(conversation.message.trimmingCharacters(in: .whitespacesAndNewlines).unicodeScalars.prefix(60)))
        let session = try await store.createSession(userId: user.id, title: title, modelId: model.id, systemPrompt: conversation.system)
        do {
            try await storeHistory(conversation.earlier(within: model.contextWindow), of: session, model: model)
            return try await starter.start(
                user: user, token: token, sessionID: session.id, message: conversation.message, modelID: model.id, settings: conversation.settings,
                streaming: conversation.streaming, requestID: context.requestID, trace: context.trace
            )
        } catch {
            try? await cache.deleted(sessionID: session.id)
            _ = try? await store.deleteSession(id: session.id, userId: user.id)
            throw error
        }
    }

    /// Stores the earlier turns as the session's complete messages and puts them in its cached history, so the
    /// worker sends them to the model (only what the model's context can use was kept).
    private func storeHistory(_ turns: [(role: MessageRole, text: String)], of session: ChatSession, model: ModelInfo) async throws {
        guard !turns.isEmpty else {
            try await cache.created(session)
            return
        }
        let prefix = "openai-" + RandomID.uuidString()
        let stored = try await store.appendMessages(
            turns.enumerated().map { index, turn in
                NewMessage(sessionId: session.id, jobId: "\(prefix)-\(index)", role: turn.role, content: turn.text, modelId: model.id)
            }
        )
        try await cache.fill(session)
        try await cache.fillHistory(sessionID: session.id, messages: stored)
    }

    /// Waits for the job's end: the completion (200), the generation's error (502), or 504 past the wait.
    private func whole(_ record: JobRecord, id: String, created: Int, model: String, headers: HTTPFields) async throws -> Response {
        guard let outcome = try await relay.waitForEnd(of: record, timeout: messageWait) else {
            throw ChatError(.timeout, code: "REPLY_TIMEOUT", message: "The reply is taking longer than expected; it will be saved when done")
        }
        guard outcome.type == ChatEventType.complete.rawValue, case .complete(let complete)? = try? ChatEvent.decode(type: .complete, data: outcome.data) else {
            var message = "The reply could not be generated"
            if case .error(let error)? = try? ChatEvent.decode(type: .error, data: outcome.data) { message = error.message }
            throw ChatError(.badGateway, code: "GENERATION_FAILED", message: message)
        }
        var response = Response.json(
            status: .ok,
            ChatCompletion(
                id: id, created: created, model: complete.modelId,
                choices: [.init(message: .init(content: complete.content), finish_reason: FinishReason.from(stopReason: complete.stopReason))],
                usage: CompletionUsage(input: complete.inputTokens, output: complete.outputTokens)
            )
        )
        response.headers.append(contentsOf: headers)
        return response
    }
}

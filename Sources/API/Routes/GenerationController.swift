import ChatCore
import ChatState
import Foundation
import HTTPTypes
import Hummingbird
import Queue
import ServiceLifecycle

/// Generations in a session: streamed (`/stream`, POST or GET for EventSource, resumable with
/// `Last-Event-ID`), whole (`/messages`, waiting or `Prefer: respond-async`), cancelled, and the
/// guide's `update-stream`; plus `GET /api/jobs/:jobId`.
struct GenerationController: Sendable {
    let starter: GenerationStarter
    let relay: EventRelay
    let state: GenerationState
    let store: any SessionStore
    /// How long `POST /messages` waits for the reply before answering 504 (the job still finishes).
    let messageWait: Duration
    /// The per-user caps on open streams.
    let limits: StreamLimits

    func register(on chat: RouterGroup<ChatRequestContext>, jobs: RouterGroup<ChatRequestContext>) {
        chat.post("/sessions/:id/stream", use: stream)
        chat.get("/sessions/:id/stream", use: stream)
        chat.post("/sessions/:id/messages", use: message)
        chat.post("/sessions/:id/cancel", use: cancel)
        chat.post("/sessions/:id/update-stream", use: updateStream)
        jobs.get("/:jobId", use: job)
    }

    /// A reply stream ready to relay: its job started (or found, to resume) and its stream slot held.
    struct ReplyStream: Sendable {
        let lease: StreamLease
        let sessionID: String
        let jobID: String
        /// The entry the relay starts after.
        let after: String
    }

    /// Starts the generation of the request's message (or finds the job to resume after `Last-Event-ID`) and
    /// takes a stream slot; nil when the client already has the job's last event.
    func openStream(_ request: Request, context: ChatRequestContext) async throws -> ReplyStream? {
        let user = try context.requireUser()
        let sessionID = try SessionController.sessionID(context)
        if let lastEventID = Self.lastEventID(request) {
            return try await resume(sessionID: sessionID, user: user, after: lastEventID)
        }
        let (message, modelID, settings) = try await Self.messageAndModel(request, context: context)
        // The stream's slot is taken by the start's own claim of the session: one Redis call for both.
        let (claim, lease) = limits.streamClaim(userID: user.id)
        do {
            let record = try await starter.start(
                user: user, token: try context.requireToken(), sessionID: sessionID, message: message, modelID: modelID, settings: settings,
                streaming: true,
                timing: context.timing, requestID: context.requestID, trace: context.trace, streamSlot: claim
            )
            return ReplyStream(lease: lease, sessionID: record.sessionID, jobID: record.jobID, after: record.startEventID)
        } catch {
            await lease.release()
            throw error
        }
    }

    /// Relays `stream`'s job to `sink` while holding its slot.
    func relay(_ stream: ReplyStream, to sink: inout some EventSink) async throws -> RelayEnd {
        try await stream.lease.hold { try await relay.relayJob(sessionID: stream.sessionID, jobID: stream.jobID, after: stream.after, to: &sink) }
    }

    @Sendable func stream(_ request: Request, context: ChatRequestContext) async throws -> Response {
        guard let stream = try await openStream(request, context: context) else {
            // The client already has the job's last event: 204 tells an EventSource to stop reconnecting.
            return Response(status: .noContent)
        }
        var response = Response(
            status: .ok, headers: EventRelay.headers,
            // `relay` holds the stream's lease (the one passed here).
            body: stream.lease.responseBody { [self] _, writer in
                var sink = SSEEventSink(writer: writer)
                _ = try await relay(stream, to: &sink)
                try await sink.writer.finish(nil)
            }
        )
        context.timing.record("server", since: context.started)
        context.timing.apply(to: &response.headers)
        return response
    }

    static let eventNotFound = ChatError(.notFound, code: "EVENT_NOT_FOUND", message: "That event is no longer available")
    static let invalidLastEventID = ChatError(.badRequest, code: "INVALID_LAST_EVENT_ID", message: "Last-Event-ID is not an event id")

    /// Finds the job an earlier event belongs to, to resume after that event.
    private func resume(sessionID: String, user: AuthenticatedUser, after entryID: String) async throws -> ReplyStream? {
        guard Self.isEntryID(entryID) else { throw Self.invalidLastEventID }
        guard try await relay.cache.owns(userID: user.id, sessionID: sessionID, store: store) else { throw SessionController.notFound }
        guard let event = try await relay.events.event(sessionID: sessionID, id: entryID) else { throw Self.eventNotFound }
        if ChatEventType(rawValue: event.type)?.isTerminal == true { return nil }
        let lease = try await limits.open(.streams, userID: user.id, id: RandomID.uuidString())
        return ReplyStream(lease: lease, sessionID: sessionID, jobID: event.jobID, after: entryID)
    }

    @Sendable func message(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let sessionID = try SessionController.sessionID(context)
        let (message, modelID, settings) = try await Self.messageAndModel(request, context: context)
        let respondAsync = request.headers[HTTPField.Name("Prefer")!]?.lowercased().contains("respond-async") == true
        // A waiting request holds a connection as a stream does, and counts as one.
        let lease = respondAsync ? nil : try await limits.open(.streams, userID: user.id, id: RandomID.uuidString())
        // A plain message sent while a reply runs (say, right after a session's initial message) waits for it
        // briefly rather than failing; an asynchronous one answers at once.
        let record: JobRecord
        do {
            record = try await starter.start(
                user: user, token: try context.requireToken(), sessionID: sessionID, message: message, modelID: modelID, settings: settings,
                streaming: false,
                queueBehind: respondAsync ? .zero : min(messageWait, .seconds(15)), requestID: context.requestID, trace: context.trace
            )
        } catch {
            await lease?.release()
            throw error
        }
        guard let lease else {
            return Response.json(status: .accepted, AcceptedJobBody(jobId: record.jobID, sessionId: sessionID, status: .queued))
        }
        return try await lease.hold { try await waitForReply(record) }
    }

    /// Waits for the job's `complete` (200) or `error` (502); past the wait, 504 with the job id.
    private func waitForReply(_ record: JobRecord) async throws -> Response {
        guard let outcome = try await relay.waitForEnd(of: record, timeout: messageWait) else {
            if Task.isShuttingDownGracefully {
                var response = Response.json(
                    status: .serviceUnavailable,
                    ErrorBody(message: "This server is stopping; the reply will be saved when done", code: "SHUTTING_DOWN", jobId: record.jobID)
                )
                response.headers[.retryAfter] = "1"
                return response
            }
            return Response.json(
                status: .gatewayTimeout,
                ErrorBody(message: "The reply is taking longer than expected; it will be saved when done", code: "REPLY_TIMEOUT", jobId: record.jobID)
            )
        }
        if outcome.type == ChatEventType.complete.rawValue, let reply = JSONValue(text: outcome.data) {
            return Response.json(status: .ok, ReplyBody(sessionId: record.sessionID, jobId: record.jobID, reply: reply))
        }
        var message = "The reply could not be generated"
        if case .error(let error)? = try? ChatEvent.decode(type: .error, data: outcome.data) { message = error.message }
        return Response.json(status: .badGateway, ErrorBody(message: message, code: "GENERATION_FAILED", jobId: record.jobID))
    }

    @Sendable func cancel(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let sessionID = try SessionController.sessionID(context)
        guard try await relay.cache.owns(userID: user.id, sessionID: sessionID, store: store) else { throw SessionController.notFound }
        guard let jobID = try await state.cancelActive(sessionID: sessionID) else {
            return Response.json(status: .ok, NoticeBody(message: "No reply is being generated", sessionId: sessionID))
        }
        return Response.json(status: .ok, NoticeBody(message: "Cancellation requested", sessionId: sessionID, jobId: jobID))
    }

    /// Accepted for the guide's clients: answers once the reply is persisted; never bills (the worker settled
    /// the credits from Bedrock's own counts).
    @Sendable func updateStream(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let sessionID = try SessionController.sessionID(context)
        let jobID = try await request.decodeBody(UpdateStreamBody.self, context: context).streamingSessionId
        guard try await relay.cache.owns(userID: user.id, sessionID: sessionID, store: store) else { throw SessionController.notFound }
        if let jobID, let record = try await state.record(jobID: jobID), record.sessionID == sessionID, !record.status.isFinal {
            // A waiting request holds a connection as a stream does, and counts as one.
            let lease = try await limits.open(.streams, userID: user.id, id: RandomID.uuidString())
            _ = try await lease.hold { try await relay.waitForEnd(of: record, timeout: messageWait) }
        }
        return Response.json(status: .ok, NoticeBody(message: "Session updated", sessionId: sessionID))
    }

    @Sendable func job(_ request: Request, context: ChatRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let jobID = try context.parameters.require("jobId")
        guard let record = try await state.record(jobID: jobID), record.userID == user.id else {
            throw ChatError(.notFound, code: "JOB_NOT_FOUND", message: "Job not found")
        }
        return Response.json(status: .ok, JobBody(record))
    }

    /// `{message, modelId?}` and the sampling settings from a JSON body (POST), or message and model from the query
    /// (GET, for EventSource).
    static func messageAndModel(_ request: Request, context: ChatRequestContext) async throws -> (String, String?, InferenceSettings?) {
        if request.method == .get {
            guard let message = FormQuery.value(request, "message")?.trimmingCharacters(in: .whitespacesAndNewlines), !message.isEmpty else {
                throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "message is required")
            }
            try TextField.checkSize(message, "message", maxBytes: SessionController.maxMessageBytes)
            return (message, FormQuery.value(request, "modelId").flatMap { $0.isEmpty ? nil : $0 }, try Self.querySettings(request))
        }
        let body = try await request.decodeBody(MessageBody.self, context: context)
        return (body.message!, body.modelId, body.settings)
    }

    /// `temperature`, `topP` and `maxTokens` from a GET stream's query (stop sequences only in a POST body);
    /// nil when none is given, 400 naming a field that is not a number or out of range.
    static func querySettings(_ request: Request) throws -> InferenceSettings? {
        func number(_ name: String) throws -> Double? {
            guard let text = FormQuery.value(request, name), !text.isEmpty else { return nil }
            guard let value = Double(text), value.isFinite else {
                throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "\(name) must be a number")
            }
            return value
        }
        if FormQuery.value(request, "stopSequences") != nil {
            throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "stopSequences can be sent only in a POST body")
        }
        let maxTokens = try number("maxTokens")
        if let maxTokens, maxTokens.rounded() != maxTokens || abs(maxTokens) > 1e9 {
            throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "maxTokens must be a whole number")
        }
        let settings = InferenceSettings(temperature: try number("temperature"), topP: try number("topP"), maxTokens: maxTokens.map { Int($0) })
        try settings.validate()
        return settings.isEmpty ? nil : settings
    }

    /// `Last-Event-ID` from the header, or `lastEventId` from the query.
    static func lastEventID(_ request: Request) -> String? {
        if let header = request.headers[HTTPField.Name("Last-Event-ID")!], !header.isEmpty { return header }
        return request.uri.queryParameters["lastEventId"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Whether `text` looks like a Redis stream entry id (`<ms>-<seq>`).
    static func isEntryID(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { UInt64($0) != nil && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }
    }
}

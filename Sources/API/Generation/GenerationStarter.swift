import ChatCore
import ChatState
import ChatStore
import Foundation
import Queue

/// Starts a generation in a session, in the order the API promises: the model is valid for the caller (400),
/// the queue has room (503), the session is theirs (404), none is running in it (409), the user is under the
/// caps on open streams and unfinished replies (429), credits are reserved (402 / 503); then the job is
/// enqueued. Whatever fails after the session was claimed releases it. Nothing here waits for MongoDB
/// unless the session cache misses: ownership, the model and the counts come from Redis, with the claim.
struct GenerationStarter: Sendable {
    let store: any SessionStore
    let state: GenerationState
    let cache: SessionCache
    let queue: JobQueue<InferenceJob>
    let ledger: any CreditLedger
    /// The longest reply asked of a model; reservations cover it.
    let maxOutputTokens: Int
    /// Refuses new generations while the queue is full.
    var backlog: BacklogGate? = nil
    /// The models callers may name.
    var catalog: ModelCatalog = .builtIn

    /// The model `id`, if the caller may use it (listed, and open to their role).
    func model(id: String, role: UserRole) throws -> ModelInfo {
        guard let model = catalog.selectable(id: id, role: role) else {
            throw ChatError(.badRequest, code: "INVALID_MODEL", message: "Invalid model ID")
        }
        return model
    }

    /// Tokens a generation may use, for its reservation: the new message, the history the worker will send (up
    /// to the context window; about 3 bytes a token, the worker's own estimate) and the longest reply.
    static func estimatedTokens(message: String, messageCount: Int, contentBytes: Int, model: ModelInfo, maxOutputTokens: Int) -> Int {
        let reply = min(maxOutputTokens, model.maxOutputTokens)
        let prompt = (message.utf8.count + contentBytes) / 3 + 8 * (messageCount + 1) + 16
        return min(prompt, max(0, model.contextWindow - reply)) + reply
    }

    /// Validates, reserves and enqueues; returns the job's record (its `startEventID` is where its events begin).
    /// With `queueBehind`, a generation already running in the session is waited for (up to that long) instead
    /// of refused: a plain message sent right after a session's initial message simply follows it. With
    /// `streamSlot`, the session's claim also takes that reply-stream slot (429 at the cap); the slot may be held
    /// even when this throws (a 402 after the claim), so the caller gives it back whatever happens, or holds it
    /// for the stream.
    func start(
        user: AuthenticatedUser, token: String, sessionID: String, message: String, modelID: String?, settings: InferenceSettings? = nil,
        streaming: Bool, queueBehind: Duration = .zero, timing: ServerTiming? = nil, requestID: String? = nil, trace: TraceContext? = nil,
        streamSlot: UserSlots.Claim? = nil
    ) async throws -> JobRecord {
        if let modelID {
            let model = try self.model(id: modelID, role: user.role)
            try settings?.validate(for: model, serviceLimit: maxOutputTokens)
        }
        try await backlog?.admit()
        let jobID = RandomID.uuidString()
        // The reservation's id is random and never leaves the server: a client that knew it could settle its
        // own reservation for nothing.
        let reservationID = RandomID.uuidString()
        let clock = ContinuousClock()
        let deadline = clock.now + queueBehind
        var filled = false
        var began = clock.now
        var outcome: (record: JobRecord, summary: SessionSummary)
        var messageID = ""
        var messageCreatedAt = Date()
        while true {
            began = clock.now
            // Taken at each claim, so a message that waited behind a reply is dated after that reply.
            messageID = ObjectID.make()
            messageCreatedAt = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
            let result = try await Self.onceMore {
                try await state.begin(
                    jobID: jobID, sessionID: sessionID, userID: user.id, requestedModel: modelID, defaultModel: catalog.defaultModelID,
                    message: message, messageID: messageID, reservationID: reservationID, createdAt: messageCreatedAt, streamSlot: streamSlot
                )
            }
            switch result {
            case .started(let record, let summary):
                outcome = (record, summary)
            case .notFound:
                throw SessionController.notFound
            case .unknownSession:
                // A session the cache does not know (it expired, or predates the cache): fill it once from MongoDB.
                guard !filled, let session = try await store.session(id: sessionID) else { throw SessionController.notFound }
                try await cache.fill(session)
                filled = true
                continue
            case .tooManyStreams:
                // Only a claimed slot is refused.
                throw StreamLimits.refusal(.streams, cap: streamSlot?.cap ?? 0)
            case .tooManyJobs:
                throw ChatError(
                    .tooManyRequests, code: "TOO_MANY_GENERATIONS",
                    message: "You already have \(state.maxJobsPerUser) replies being generated; wait for one to finish"
                )
            case .busy:
                // Waiting behind a running reply polls the lock alone, not the whole claim with the message.
                repeat {
                    guard clock.now < deadline else {
                        throw ChatError(.conflict, code: "GENERATION_IN_PROGRESS", message: "A reply is already being generated in this session")
                    }
                    try await Task.sleep(for: .milliseconds(100))
                } while try await state.activeJob(sessionID: sessionID) != nil
                continue
            }
            break
        }
        timing?.record("session", since: began)
        let record = outcome.record
        var reserved = false
        var reserveAttempted = false
        do {
            let model = try self.model(id: record.modelID, role: user.role)
            // The session's model when the request named none: its limit is known only now.
            try settings?.validate(for: model, serviceLimit: maxOutputTokens)
            let estimate = Self.estimatedTokens(
                message: message + (outcome.summary.systemPrompt ?? ""), messageCount: outcome.summary.messageCount, contentBytes: outcome.summary.contentBytes, model: model,
                maxOutputTokens: settings?.maxTokens ?? maxOutputTokens
            )
            var step = clock.now
            reserveAttempted = true
            // Priced at the dearest model of its fallback chain: the reservation covers whichever answers.
            let reservedModel = catalog.dearest(inChainOf: model).id
            let reservation = try await ledger.reserve(
                reservationID: reservationID, sessionID: sessionID, modelID: reservedModel, estimatedTokens: estimate, token: token
            )
            reserved = true
            ChatMetrics.creditsReserved(model: model.id, reservation.allocatedCredits)
            timing?.record("reserve", since: step)
            step = clock.now
            let fields = try JobQueue<InferenceJob>.fields(
                id: jobID,
                payload: InferenceJob(
                    sessionId: sessionID, userId: user.id, modelId: model.id, message: message, streaming: streaming, messageId: messageID,
                    messageCreatedAt: messageCreatedAt, reservationId: reservationID, estimatedTokens: estimate, requestId: requestID,
                    traceparent: TraceContext.outgoingTraceparent(fallback: trace), settings: settings,
                    systemPrompt: outcome.summary.systemPrompt, reservedModelId: reservedModel
                )
            )
            guard try await Self.onceMore({ try await state.enqueue(jobID: jobID, stream: queue.configuration.stream, fields: fields) }) != nil else {
                // Ended meanwhile by the sweeper (this request stalled past the enqueue grace): it refunds.
                throw ChatError(.unavailable, code: "SERVICE_UNAVAILABLE", message: "The reply could not be started; please try again")
            }
            timing?.record("enqueue", since: step)
            ChatMetrics.jobEnqueued(model: model.id)
        } catch {
            // Nothing will run: give the credits back now rather than when the reservation expires, but only
            // once the job is known to be abandoned (an enqueue whose answer was lost may have reached a worker:
            // then the job stands and keeps its credits). When that is not known, the sweeper ends the job
            // after the enqueue grace and parks the refund. A reservation whose answer was lost (a timeout) may
            // exist too: releasing an unknown id is harmless.
            let abandoned = try? await state.abandonBeforeEnqueue(jobID: jobID, sessionID: sessionID)
            let refused = (error as? ChatError)?.kind == .paymentRequired
            if abandoned == true, reserved || (reserveAttempted && !refused) {
                do {
                    let refund = try await ledger.finalize(
                        reservationID: reservationID, modelID: record.modelID, inputTokens: 0, outputTokens: 0, success: false, token: token
                    )
                    ChatMetrics.creditsSettled(model: record.modelID, charged: refund.creditsUsed, refunded: refund.refund)
                } catch {
                    try? await state.parkSettlement(
                        PendingSettlement(reservationID: reservationID, userID: user.id, modelID: record.modelID, inputTokens: 0, outputTokens: 0, success: false)
                    )
                }
            }
            throw error
        }
        return record
    }

    /// Runs `step` (idempotent for its job) once more when Redis's answer was lost (a timeout or a dropped
    /// connection): the second call finds what the first did, if it was done.
    static func onceMore<T: Sendable>(_ step: () async throws -> T) async throws -> T {
        do {
            return try await step()
        } catch let error as RedisClientError where error.code == .timeout || error.code == .connectionClosed {
            return try await step()
        }
    }
}

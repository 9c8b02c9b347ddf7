import ChatCore
import Foundation
import Queue

/// Starts a generation in a session, in the order the API promises: the model is valid for the caller (400),
/// the session is theirs (404), none is running in it (409), credits are reserved (402 / 503); then the job
/// is enqueued. Whatever fails after the session was claimed releases it.
struct GenerationStarter: Sendable {
    let store: any SessionStore
    let state: GenerationState
    let queue: JobQueue<InferenceJob>
    let events: SessionEvents
    let ledger: any CreditLedger
    /// The longest reply asked of a model; reservations cover it.
    let maxOutputTokens: Int

    /// The model a request names (or the session's, or the default), if the caller may use it.
    static func model(_ requested: String?, session: ChatSession?, role: UserRole) throws -> ModelInfo {
        let id = requested ?? session?.modelId ?? ModelCatalog.defaultModelID
        guard let model = ModelCatalog.model(id: id), model.roles.contains(role) else {
            throw ChatError(.badRequest, code: "INVALID_MODEL", message: "Invalid model ID")
        }
        return model
    }

    /// Tokens a generation may use, for its reservation: the new message, the history the worker will send (up
    /// to the context window; about 3 bytes a token, the worker's own estimate) and the longest reply.
    static func estimatedTokens(message: String, session: ChatSession, model: ModelInfo, maxOutputTokens: Int) -> Int {
        let reply = min(maxOutputTokens, model.maxOutputTokens)
        let prompt = (message.utf8.count + session.contentBytes) / 3 + 8 * (session.messageCount + 1) + 16
        return min(prompt, max(0, model.contextWindow - reply)) + reply
    }

    /// Validates, reserves and enqueues; returns the job's record (its `startEventID` is where its events begin).
    /// With `queueBehind`, a generation already running in the session is waited for (up to that long) instead
    /// of refused: a plain message sent right after a session's initial message simply follows it.
    func start(
        user: AuthenticatedUser, token: String, sessionID: String, message: String, modelID: String?, streaming: Bool, queueBehind: Duration = .zero
    ) async throws -> JobRecord {
        if let modelID { _ = try Self.model(modelID, session: nil, role: user.role) }
        guard let session = try await store.session(id: sessionID, userId: user.id) else {
            throw ChatError(.notFound, code: "SESSION_NOT_FOUND", message: "Session not found")
        }
        let model = try Self.model(modelID, session: session, role: user.role)
        let jobID = UUID().uuidString.lowercased()
        let clock = ContinuousClock()
        let deadline = clock.now + queueBehind
        var record: JobRecord
        while true {
            record = JobRecord(
                jobID: jobID, sessionID: session.id, userID: user.id, modelID: model.id, status: .queued,
                startEventID: try await events.lastEventID(sessionID: session.id)
            )
            if try await state.begin(record) { break }
            guard clock.now < deadline else {
                throw ChatError(.conflict, code: "GENERATION_IN_PROGRESS", message: "A reply is already being generated in this session")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        var reserved = false
        do {
            let estimate = Self.estimatedTokens(message: message, session: session, model: model, maxOutputTokens: maxOutputTokens)
            _ = try await ledger.reserve(reservationID: jobID, sessionID: session.id, modelID: model.id, estimatedTokens: estimate, token: token)
            reserved = true
            try await queue.enqueue(
                id: jobID, payload: InferenceJob(sessionId: session.id, userId: user.id, modelId: model.id, message: message, streaming: streaming)
            )
        } catch {
            // Nothing will run: give the credits back now rather than when the reservation expires.
            if reserved {
                _ = try? await ledger.finalize(reservationID: jobID, modelID: model.id, inputTokens: 0, outputTokens: 0, success: false, token: token)
            }
            try? await state.abandonBeforeEnqueue(jobID: jobID, sessionID: session.id)
            throw error
        }
        return record
    }
}

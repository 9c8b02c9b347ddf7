import Bedrock
import ChatCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import Queue

/// Runs one generation job: loads the conversation, calls Bedrock through the model's family adapter,
/// publishes `model`, `chunk` and `complete` events as they come, persists the user's and the assistant's
/// messages (idempotently, keyed by job), settles the credit reservation once with the tokens Bedrock
/// reported, and records the job's end. A re-run starts with a `reset` event.
struct GenerationHandler: JobHandler {
    let bedrock: BedrockClient
    let store: any SessionStore
    let events: SessionEvents
    let state: GenerationState
    let ledger: any CreditLedger
    /// Signs short-lived tokens for calls made on the user's behalf (the user's own token is never stored).
    let signer: AccessTokenVerifier
    /// Where settlements the accounting service could not take wait for a retry.
    let pending: PendingSettlements
    let maxOutputTokens: Int
    let maxAttempts: Int
    /// How often a running job checks whether it was asked to stop.
    let cancelPoll: Duration
    let logger: Logger

    /// Thrown inside a run when the job was cancelled by the user.
    struct Cancelled: Error {}

    func run(_ job: QueuedJob<InferenceJob>) async throws {
        let request = job.payload
        let publisher = EventPublisher(events: events, sessionID: request.sessionId, jobID: job.id)
        // Delivered again after it ended (its acknowledgement was lost): its effects are done; only ack it.
        if try await state.record(jobID: job.id)?.status.isFinal == true { return }
        try await state.markRunning(jobID: job.id, sessionID: request.sessionId, attempt: job.attempt)
        if job.attempt > 1 {
            try await publisher.publish("reset", ["jobId": job.id, "attempt": job.attempt, "message": "The reply is being generated again"])
        }
        guard let model = ModelCatalog.model(id: request.modelId) else { throw JobFailure.permanent("unknown model \(request.modelId)") }
        guard try await store.session(id: request.sessionId) != nil else { throw JobFailure.permanent("the session was deleted") }

        let history = try await store.messages(sessionId: request.sessionId)
        _ = try await store.appendMessage(
            NewMessage(sessionId: request.sessionId, jobId: job.id, role: .user, content: request.message, modelId: model.id)
        )
        let turns = history.filter { $0.jobId != job.id && $0.status == .complete }.map { ConversationTurn(role: $0.role, text: $0.content) }
            + [ConversationTurn(role: .user, text: request.message)]
        let generation = ContextWindow.fit(
            GenerationRequest(turns: turns, maxTokens: min(maxOutputTokens, model.maxOutputTokens)), contextWindow: model.contextWindow
        )
        try await publisher.publish("model", ["jobId": job.id, "streamingSessionId": job.id, "modelId": model.id, "attempt": job.attempt])

        let clock = ContinuousClock()
        let started = clock.now
        let progress = NIOLockedValueBox(Progress())
        var outcome: Outcome
        do {
            try await withCancellationPolling(jobID: job.id, sessionID: request.sessionId) {
                try await generate(model: model, request: generation, streaming: request.streaming, publisher: publisher, progress: progress)
            }
            outcome = .completed
        } catch is Cancelled {
            outcome = .cancelled
        } catch let error as BedrockError {
            let partial = progress.withLockedValue { $0 }
            logger.warning("generation failed", metadata: ["job": "\(job.id)", "code": "\(error.code)", "chunks": "\(partial.chunks)"])
            if error.isRetryable && job.attempt < maxAttempts { throw error }
            // Nothing generated and nothing reported (a refused or throttled call): nothing is billed.
            let used = partial.chunks == 0 && partial.accumulator.billedUsage.source == .unknown
                ? (input: 0, output: 0) : partial.billedUsage(estimatedInput: ContextWindow.estimatedPromptTokens(generation), finished: false)
            try await settle(job, model: model, usage: used, success: false)
            throw JobFailure.permanent("\(error.code): \(error.message)")
        }

        let done = progress.withLockedValue { $0 }
        let usage = done.billedUsage(estimatedInput: ContextWindow.estimatedPromptTokens(generation), finished: outcome == .completed)
        var messageID: String?
        do {
            messageID = try await store.appendMessage(
                NewMessage(
                    sessionId: request.sessionId, jobId: job.id, role: .assistant, content: done.accumulator.text, modelId: model.id,
                    status: outcome == .cancelled ? .cancelled : .complete, inputTokens: usage.input, outputTokens: usage.output
                )
            ).id
        } catch let error as ChatError where error.kind == .notFound {
            // The session was deleted while the reply was generated: there is nowhere to keep the reply, but
            // what was generated is still billed and the job still ends.
            logger.info("session deleted during generation; reply not stored", metadata: ["job": "\(job.id)"])
        }
        let settlement = try await settle(job, model: model, usage: usage, success: outcome == .completed)
        let latency = clock.now - started
        let complete: [String: Any] = [
            "jobId": job.id, "streamingSessionId": job.id, "messageId": messageID ?? NSNull(), "content": done.accumulator.text,
            "modelId": model.id, "stopReason": outcome == .cancelled ? StopReason.cancelled.rawValue : (done.accumulator.stopReason ?? .endTurn).rawValue,
            "inputTokens": usage.input, "outputTokens": usage.output, "totalTokens": usage.input + usage.output,
            "creditsCharged": settlement?.creditsUsed ?? 0, "settlementPending": settlement == nil, "latencyMs": Int(latency.components.seconds * 1000 + latency.components.attoseconds / 1_000_000_000_000_000),
        ]
        let body = try await publisher.publish("complete", complete)
        try await state.finish(jobID: job.id, sessionID: request.sessionId, status: outcome == .cancelled ? .cancelled : .completed, result: body, error: nil)
    }

    func abandon(_ job: QueuedJob<InferenceJob>, reason: String) async {
        let request = job.payload
        let publisher = EventPublisher(events: events, sessionID: request.sessionId, jobID: job.id)
        do {
            // Idempotent: a reservation already settled by the failed run is not refunded twice.
            _ = try? await settle(job, model: ModelCatalog.model(id: request.modelId), usage: (0, 0), success: false)
            let body = try await publisher.publish(
                "error", ["jobId": job.id, "code": "GENERATION_FAILED", "message": "The reply could not be generated. Your credits were refunded."]
            )
            try await state.finish(jobID: job.id, sessionID: request.sessionId, status: .failed, result: nil, error: body)
        } catch {
            logger.error("could not report a failed job", metadata: ["job": "\(job.id)", "error": "\(error)"])
        }
    }

    enum Outcome { case completed, cancelled }

    /// Calls Bedrock, streaming or not, and publishes each piece of text as a chunk.
    private func generate(
        model: ModelInfo, request: GenerationRequest, streaming: Bool, publisher: EventPublisher, progress: NIOLockedValueBox<Progress>
    ) async throws {
        if streaming {
            for try await delta in try await bedrock.streamGeneration(model: model, request: request) {
                let index = progress.withLockedValue { progress -> Int? in
                    progress.accumulator.add(delta)
                    guard !delta.text.isEmpty else { return nil }
                    defer { progress.chunks += 1 }
                    return progress.chunks
                }
                if let index { try await publisher.publish("chunk", ["content": delta.text, "index": index]) }
            }
        } else {
            let result = try await bedrock.generate(model: model, request: request)
            progress.withLockedValue {
                $0.accumulator.add(
                    ChunkDelta(text: result.text, stopReason: result.stopReason, usage: TokenUsage(inputTokens: result.inputTokens, outputTokens: result.outputTokens))
                )
                $0.chunks = 1
            }
            try await publisher.publish("chunk", ["content": result.text, "index": 0])
        }
    }

    /// Runs `body` while polling the job's cancellation flag; a request to stop cancels `body` (closing the
    /// Bedrock stream) and throws `Cancelled`.
    /// Every 40 polls (10 s at the default) it also renews the session's lock, so a long reply keeps its session.
    private func withCancellationPolling(jobID: String, sessionID: String, _ body: @escaping @Sendable () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await body()
                return true
            }
            group.addTask {
                var polls = 0
                while true {
                    try await Task.sleep(for: cancelPoll)
                    if (try? await state.cancelRequested([jobID]))?.isEmpty == false { return false }
                    polls += 1
                    if polls % 40 == 0 { try? await state.renewLock(jobID: jobID, sessionID: sessionID) }
                }
            }
            defer { group.cancelAll() }
            guard try await group.next() == true else { throw Cancelled() }
        }
    }

    /// Finalizes the reservation (idempotent at the accounting service) with the tokens used. If the accounting
    /// service cannot take it now, the settlement is kept for `PendingSettlements` to retry and nil comes back:
    /// the reply stands and is not generated again.
    @discardableResult
    private func settle(_ job: QueuedJob<InferenceJob>, model: ModelInfo?, usage: (input: Int, output: Int), success: Bool) async throws -> CreditSettlement? {
        let modelID = model?.id ?? job.payload.modelId
        do {
            return try await ledger.finalize(
                reservationID: job.id, modelID: modelID, inputTokens: usage.input, outputTokens: usage.output, success: success,
                token: signer.sign(userID: job.payload.userId, role: .enduser, lifetime: 300)
            )
        } catch let error as ChatError where error.kind == .unavailable {
            logger.warning("accounting unavailable at settlement; kept for retry", metadata: ["job": "\(job.id)"])
            try await pending.add(
                PendingSettlement(
                    reservationID: job.id, userID: job.payload.userId, modelID: modelID, inputTokens: usage.input, outputTokens: usage.output, success: success
                )
            )
            return nil
        }
    }
}

/// What a run has produced so far.
struct Progress: Sendable {
    var accumulator = GenerationAccumulator()
    /// Chunks of text published.
    var chunks = 0

    /// Bedrock's counts where it reported them. A reply cut short (cancelled, failed) has no final count:
    /// the output is then at least the chunks received (each carries one token or more), and `estimatedInput`
    /// stands in for an input count never reported.
    func billedUsage(estimatedInput: Int, finished: Bool) -> (input: Int, output: Int) {
        let reported = accumulator.billedUsage
        let input = reported.input > 0 ? reported.input : estimatedInput
        return finished ? (input, reported.output) : (input, max(reported.output, chunks))
    }
}

/// Appends a job's events to its session's stream.
struct EventPublisher: Sendable {
    let events: SessionEvents
    let sessionID: String
    let jobID: String

    /// Publishes one event; returns its JSON body.
    @discardableResult
    func publish(_ type: String, _ body: [String: Any]) async throws -> String {
        let data = String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self)
        try await events.append(sessionID: sessionID, jobID: jobID, type: type, data: data)
        return data
    }
}

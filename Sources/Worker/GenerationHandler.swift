import Bedrock
import ChatCore
import ChatState
import ChatStore
import Foundation
import Logging
import NIOConcurrencyHelpers
import Queue
import Tracing

/// Runs one generation job in three stages: `prepare` (one Redis script starts the run, publishes `reset` and
/// `model`, and hands back the session's cached history; MongoDB only on a cache miss), `generate` (the model
/// streams, each piece published as `chunk`), and `finish` (the user's message and the reply stored in one
/// write and the credits settled side by side, then one script publishes `complete`, records the end and
/// brings the cached history up to date). Until then the session shows the user's message from the job's
/// record. Messages are stored idempotently per (job, role); the reservation is settled once with the tokens
/// Bedrock reported. A failed job stores the user's message alone. A re-run starts with a `reset` event.
struct GenerationHandler: JobHandler {
    let generator: any TextGenerator
    let store: any SessionStore
    let state: GenerationState
    let cache: SessionCache
    let ledger: any CreditLedger
    /// Signs short-lived tokens for calls made on the user's behalf (the user's own token is never stored).
    let signer: UserTokenSigner
    /// Where settlements the accounting service could not take wait for a retry.
    let pending: PendingSettlements
    /// The process's running jobs: cancellation without a poll per job, and lock renewal.
    let running: RunningJobs
    let maxOutputTokens: Int
    let maxAttempts: Int
    /// The models jobs name, with their fallback chains.
    var catalog: ModelCatalog = .builtIn
    /// Tries of a model's Bedrock call before a throttled or unready model gives way to its fallback (the last
    /// model of a chain gets the client's full `maxAttempts`).
    var fallbackAttempts = 2
    /// The pause before a fallback is called grows from this (full jitter, doubling).
    var fallbackBackoff = Backoff(base: .milliseconds(100), maximum: .seconds(2))
    /// How often a running reply makes its reservation again, which extends it (well under the accounting
    /// service's reservation lifetime).
    var reservationRenewal: Duration = .seconds(300)
    let logger: Logger

    /// Thrown inside a run when the job was cancelled by the user.
    struct Cancelled: Error {}

    /// What `prepare` hands on.
    struct Prepared {
        var model: ModelInfo
        /// The request to `model`.
        var request: GenerationRequest
        var cancelledBeforeStart: Bool
        /// `model`, then the models tried when it is throttled or not ready before its first chunk.
        var chain: [ModelInfo] = []

        /// The request to `other`: the same conversation and settings, its reply and context limits.
        func request(for other: ModelInfo) -> GenerationRequest {
            guard other.id != model.id else { return request }
            var adjusted = request
            adjusted.maxTokens = min(request.maxTokens, other.maxOutputTokens)
            return ContextWindow.fit(adjusted, contextWindow: other.contextWindow)
        }
    }

    /// What `prepare` found.
    enum Start {
        /// The job already ended (a delivery after its end): only ack it.
        case ended
        /// An earlier attempt committed its outcome: finish from it, never calling the model again.
        case committed(JobOutcome)
        /// Run the model.
        case run(Prepared)
    }

    /// Runs one attempt of `job` and counts how it ended (`chat_jobs_finished_total`): `completed`, `cancelled`,
    /// `failed` (given up for good), `abandoned` (the attempt lost the job, or the worker is draining) or
    /// `error` (the queue tries it again, or dead-letters it after its last attempt).
    /// Every log line written while it runs carries the job's `jobId`, `sessionId`, `userId`, and the
    /// `requestId` and `traceId` of the request that started it; its Bedrock and accounting calls continue
    /// that trace. One line at info says how it ended.
    func run(_ job: QueuedJob<InferenceJob>) async throws {
        let trace = job.payload.traceparent.flatMap(TraceContext.init(traceparent:)) ?? .start()
        var ids: Logger.Metadata = [
            "jobId": .string(job.id), "sessionId": .string(job.payload.sessionId), "userId": .string(job.payload.userId),
            "traceId": .string(trace.traceID), "attempt": .stringConvertible(job.attempt),
        ]
        if let requestID = job.payload.requestId { ids["requestId"] = .string(requestID) }
        try await LogContext.with(ids) {
            try await TraceContext.$current.withValue(trace) {
                // A consumer span (recorded in the OTLP build) continues the trace of the request that started the job.
                try await withSpan("chat job", context: trace.serviceContext(), ofKind: .consumer) { span in
                    span.attributes["chat.job_id"] = job.id
                    span.attributes["chat.attempt"] = job.attempt
                    span.attributes["chat.model"] = job.payload.modelId
                    try await runCounted(job)
                }
            }
        }
    }

    private func runCounted(_ job: QueuedJob<InferenceJob>) async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let model = job.payload.modelId
        do {
            if let status = try await runAttempt(job) {
                ChatMetrics.jobFinished(model: model, outcome: status.rawValue, duration: clock.now - started)
                logger.info("job finished", metadata: ["outcome": .string(status.rawValue), "model": .string(model), "durationMs": .stringConvertible((clock.now - started).milliseconds)])
            }
        } catch {
            let outcome = switch error {
            case is JobFailure: "failed"
            case is JobFenced, is CancellationError: "abandoned"
            default: "error"
            }
            ChatMetrics.jobFinished(model: model, outcome: outcome, duration: clock.now - started)
            logger.info("job finished", metadata: ["outcome": .string(outcome), "model": .string(model), "durationMs": .stringConvertible((clock.now - started).milliseconds)])
            throw error
        }
    }

    /// Runs one attempt; returns the status the job ended with, nil when it had ended before.
    private func runAttempt(_ job: QueuedJob<InferenceJob>) async throws -> JobStatus? {
        let cancellation = running.register(jobID: job.id, sessionID: job.payload.sessionId, attempt: job.attempt)
        defer { running.unregister(jobID: job.id) }
        let clock = ContinuousClock()
        let started = clock.now
        let pickup = max(0, Date().timeIntervalSince(job.payload.requestedAt) * 1000)
        let prepared: Prepared
        switch try await prepare(job) {
        case .ended: return nil
        case .committed(let outcome):
            logger.info("finishing a job from the outcome an earlier attempt committed", metadata: ["jobId": "\(job.id)", "attempt": "\(job.attempt)"])
            try await finish(job, outcome)
            return outcome.status
        case .run(let ready): prepared = ready
        }
        // The reservation that holds the reply's credits: the job's, or the late one that replaced it.
        var holding = job.payload.reservationId ?? job.id
        do {
            holding = try await renewStaleReservation(job)
        } catch let error as ChatError where error.kind == .paymentRequired {
            let failed = try await commit(
                job,
                JobOutcome(
                    attempt: job.attempt, status: .failed, text: "", stopReason: "error", inputTokens: 0, outputTokens: 0, replyMessageID: nil,
                    failure: "INSUFFICIENT_CREDITS: the reply waited longer than its credit reservation, and the credits are gone"
                )
            )
            try await settle(job, modelID: job.payload.modelId, outcome: failed)
            throw JobFailure.permanent(failed.failure ?? "INSUFFICIENT_CREDITS")
        }
        let prepareTime = clock.now - started
        ChatMetrics.jobStarted(model: prepared.model.id)

        let progress = NIOLockedValueBox(Progress())
        let outcome: Outcome
        do {
            if prepared.cancelledBeforeStart { throw Cancelled() }
            try await untilCancelled(job, cancellation, renewing: holding) {
                try await generate(job, prepared, progress: progress)
            }
            outcome = .completed
        } catch is Cancelled {
            outcome = .cancelled
        } catch let error as BedrockError {
            ChatMetrics.bedrockError(exception: error.code)
            // A worker that lost the job or is draining leaves it to the next attempt without settling.
            try Task.checkCancellation()
            let partial = progress.withLockedValue { $0 }
            let answered = partial.modelID ?? job.payload.modelId
            logger.warning("generation failed", metadata: ["jobId": "\(job.id)", "code": "\(error.code)", "chunks": "\(partial.chunks)"])
            if error.isRetryable && job.attempt < maxAttempts { throw error }
            // Nothing generated and nothing reported (a refused or throttled call): nothing is billed.
            let used = partial.chunks == 0 && partial.accumulator.billedUsage.source == .unknown
                ? (input: 0, output: 0) : partial.billedUsage(estimatedInput: ContextWindow.estimatedPromptTokens(prepared.request), finished: false)
            let failed = try await commit(
                job,
                JobOutcome(
                    attempt: job.attempt, status: .failed, text: partial.accumulator.text, stopReason: "error", inputTokens: used.input,
                    outputTokens: used.output, replyMessageID: nil, failure: "\(error.code): \(error.message)", modelID: partial.modelID
                )
            )
            try await settle(job, modelID: answered, outcome: failed)
            throw JobFailure.permanent(failed.failure ?? "\(error.code): \(error.message)")
        }
        try Task.checkCancellation()
        var done = progress.withLockedValue { $0 }
        done.timings.prepare = prepareTime
        if let firstByte = done.timings.firstByte, let publish = done.timings.publish {
            ChatMetrics.timeToFirstToken(model: prepared.model.id, prepareTime + firstByte + publish)
        }
        let usage = billedUsage(done, prepared, outcome: outcome)
        // What the run produced is committed before anything of it is stored or billed: an attempt that lost
        // the job is refused here, and one that dies after this is finished from the commit by the next.
        let committed = try await commit(
            job,
            JobOutcome(
                attempt: job.attempt, status: outcome == .cancelled ? .cancelled : .completed, text: done.accumulator.text,
                stopReason: outcome == .cancelled ? StopReason.cancelled.rawValue : (done.accumulator.stopReason ?? .endTurn).rawValue,
                inputTokens: usage.input, outputTokens: usage.output, replyMessageID: ObjectID.make(),
                latencyMs: Int((clock.now - started).milliseconds), spans: done.timings.spans(pickup: pickup), modelID: done.modelID
            )
        )
        try await finish(job, committed)
        return committed.status
    }

    /// Commits `outcome` for the job's attempt and returns the outcome that stands; throws `JobFenced` when the
    /// attempt is no longer the job's current one (or the job ended meanwhile).
    private func commit(_ job: QueuedJob<InferenceJob>, _ outcome: JobOutcome) async throws -> JobOutcome {
        switch try await state.commit(jobID: job.id, outcome) {
        case .committed:
            // Counted where the outcome first stands: once per job, whatever attempt finishes or settles it.
            ChatMetrics.tokens(model: outcome.modelID ?? job.payload.modelId, input: outcome.inputTokens, output: outcome.outputTokens)
            return outcome
        case .alreadyCommitted:
            // This attempt committed before (a retried call whose first answer was lost): that one stands.
            guard let stored = try await state.outcome(jobID: job.id), stored.attempt == job.attempt else {
                throw JobFenced(jobID: job.id, attempt: job.attempt)
            }
            return stored
        case .refused:
            throw JobFenced(jobID: job.id, attempt: job.attempt)
        }
    }

    /// Starts the run in Redis and assembles what the model will see.
    private func prepare(_ job: QueuedJob<InferenceJob>) async throws -> Start {
        let request = job.payload
        guard let model = catalog.model(id: request.modelId) else { throw JobFailure.permanent("unknown model \(request.modelId)") }
        let start = try await state.startRun(
            jobID: job.id, sessionID: request.sessionId, attempt: job.attempt,
            reset: job.attempt > 1 ? .reset(ResetEvent(jobId: job.id, attempt: job.attempt)) : nil,
            model: .model(ModelEvent(jobId: job.id, modelId: model.id, attempt: job.attempt))
        )
        let history: [HistoryTurn]
        let cancelled: Bool
        switch start {
        case .ended:
            // Delivered again after it ended (its acknowledgement was lost): its effects are done; only ack it.
            return .ended
        case .stale:
            throw JobFenced(jobID: job.id, attempt: job.attempt)
        case .gone:
            throw JobFailure.permanent("the job's record is gone")
        case .committed(let outcome):
            return .committed(outcome)
        case .sessionDeleted:
            throw JobFailure.permanent("the session was deleted")
        case .started(let cached?, _, let cancelRequested):
            history = cached
            cancelled = cancelRequested
        case .started(nil, let sessionKnown, let cancelRequested):
            if !sessionKnown {
                guard let session = try await store.session(id: request.sessionId) else { throw JobFailure.permanent("the session was deleted") }
                try await cache.fill(session)
            }
            // Only what the model's context can use is read (about four bytes a token at most), a page at a time.
            // An earlier attempt of this job may have stored its user's message already: it is not history.
            let messages = try await store.recentMessages(sessionId: request.sessionId, bytes: model.contextWindow * 4)
                .filter { $0.jobId != job.id }
            do {
                try await cache.fillHistory(sessionID: request.sessionId, messages: messages)
            } catch {
                logger.warning("could not fill the session's cached history", metadata: ["jobId": "\(job.id)", "error": "\(error)"])
            }
            history = messages.filter { $0.status == .complete }.map { HistoryTurn(jobID: $0.jobId, role: $0.role, text: $0.content) }
            cancelled = cancelRequested
        }
        let turns = history.filter { $0.jobID != job.id }.map { ConversationTurn(role: $0.role, text: $0.text) }
            + [ConversationTurn(role: .user, text: request.message)]
        // A message's own maxTokens may lower the service's longest reply, never raise it (its reservation was sized so).
        let settings = job.payload.settings
        let generation = ContextWindow.fit(
            GenerationRequest(
                system: job.payload.systemPrompt, turns: turns, maxTokens: min(settings?.maxTokens ?? maxOutputTokens, maxOutputTokens, model.maxOutputTokens),
                temperature: settings?.temperature, topP: settings?.topP, stopSequences: settings?.stopSequences ?? []
            ),
            contextWindow: model.contextWindow
        )
        return .run(Prepared(model: model, request: generation, cancelledBeforeStart: cancelled, chain: catalog.chain(for: model)))
    }

    /// Calls the job's model, or, while it is throttled or not ready before its first chunk, the next model of its
    /// chain after a pause; the first that answers gives the reply. Past the first chunk there is no switch.
    private func generate(_ job: QueuedJob<InferenceJob>, _ prepared: Prepared, progress: NIOLockedValueBox<Progress>) async throws {
        let chain = usableChain(prepared, settings: job.payload.settings)
        var random = SystemRandomNumberGenerator()
        // The first busy answer: what the attempt fails with if no fallback can take the request.
        var busy: BedrockError?
        for (index, model) in chain.enumerated() {
            let last = index == chain.count - 1
            do {
                try await BedrockClient.$attemptLimit.withValue(last ? nil : fallbackAttempts) {
                    try await generate(job, model: model, request: prepared.request(for: model), fallbackFrom: index == 0 ? nil : prepared.model.id, progress: progress)
                }
                return
            } catch let error as BedrockError where progress.withLockedValue({ $0.chunks == 0 }) && (Self.givesWay(error) || busy != nil) {
                // Nothing of this model was shown: the run forgets it (a `model` event may have named it).
                progress.withLockedValue {
                    $0.accumulator = GenerationAccumulator()
                    $0.modelID = nil
                }
                if !Self.givesWay(error), error.code == "ValidationException" || last {
                    // A fallback refused what the busy model would have taken (or the last one could not answer):
                    // the attempt fails with the busy error, and the queue tries the job again later.
                    logger.warning("a fallback refused the request", metadata: ["jobId": "\(job.id)", "model": "\(model.id)", "code": "\(error.code)"])
                    throw busy ?? error
                }
                if Self.givesWay(error) { busy = busy ?? error }
                // The error that ends the attempt is counted where the attempt ends; those passed over, here.
                guard !last else { throw error }
                ChatMetrics.bedrockError(exception: error.code)
                ChatMetrics.modelFallback(from: model.id, to: chain[index + 1].id)
                let pause = fallbackBackoff.delay(beforeRetry: index + 1, using: &random)
                logger.warning(
                    "the model cannot answer now; trying its fallback",
                    metadata: ["jobId": "\(job.id)", "model": "\(model.id)", "fallback": "\(chain[index + 1].id)", "code": "\(error.code)", "pauseMs": "\(pause.milliseconds)"]
                )
                try await Task.sleep(for: pause)
            }
        }
    }

    /// The job's model, then those of its fallbacks that take the message's settings (a fallback's own reply
    /// limit caps `maxTokens`, so only the other settings can rule one out: Titan's stop sequences, say).
    func usableChain(_ prepared: Prepared, settings: InferenceSettings?) -> [ModelInfo] {
        guard var others = settings else { return prepared.chain.isEmpty ? [prepared.model] : prepared.chain }
        others.maxTokens = nil
        let fallbacks = prepared.chain.dropFirst().filter { (try? others.validate(for: $0, serviceLimit: maxOutputTokens)) != nil }
        return [prepared.model] + fallbacks
    }

    /// The model a job's reservation is priced at, as chat-api made it (the dearest of its model's chain; the job's
    /// own model in jobs enqueued before the job named it).
    func reservedModel(_ job: QueuedJob<InferenceJob>) -> String {
        job.payload.reservedModelId ?? job.payload.modelId
    }

    /// The Bedrock exceptions that say a model is busy rather than that the request is wrong.
    static let busyExceptions = ["ThrottlingException", "ModelNotReadyException", "ServiceUnavailableException"]

    /// Whether `error` makes a model give way to its fallback: throttled, not ready, or the service unavailable.
    static func givesWay(_ error: BedrockError) -> Bool {
        busyExceptions.contains(error.code)
    }

    /// Calls `model`, streaming or not, and publishes each piece of text as a chunk; a fallback that takes the call
    /// is named by a `model` event before its first chunk.
    private func generate(
        _ job: QueuedJob<InferenceJob>, model: ModelInfo, request: GenerationRequest, fallbackFrom: String?, progress: NIOLockedValueBox<Progress>
    ) async throws {
        let clock = ContinuousClock()
        let called = clock.now
        let sessionID = job.payload.sessionId
        let announce = { () async throws -> Void in
            guard let fallbackFrom else { return }
            progress.withLockedValue { $0.modelID = model.id }
            try await state.publish(
                jobID: job.id, sessionID: sessionID, attempt: job.attempt,
                event: .model(ModelEvent(jobId: job.id, modelId: model.id, attempt: job.attempt, fallbackFrom: fallbackFrom))
            )
        }
        if job.payload.streaming {
            // Chunks are pipelined: each is written at once and its reply checked later. The first is waited
            // for, so that its publish span is measured.
            var publisher = state.chunkPublisher(jobID: job.id, sessionID: sessionID, attempt: job.attempt)
            let stream = try await generator.stream(model: model, request: request)
            try await announce()
            for try await delta in stream {
                let index = progress.withLockedValue { progress -> Int? in
                    progress.accumulator.add(delta)
                    guard !delta.text.isEmpty else { return nil }
                    defer { progress.chunks += 1 }
                    return progress.chunks
                }
                guard let index else { continue }
                let firstByte = clock.now
                try await publisher.publish(ChunkEvent(content: delta.text, index: index), wait: index == 0)
                if index == 0 {
                    progress.withLockedValue { $0.timings.firstChunk(firstByte: firstByte - called, publish: clock.now - firstByte) }
                }
            }
            try await publisher.flush()
        } else {
            let result = try await generator.whole(model: model, request: request)
            let firstByte = clock.now
            try await announce()
            progress.withLockedValue {
                $0.accumulator.add(
                    ChunkDelta(text: result.text, stopReason: result.stopReason, usage: TokenUsage(inputTokens: result.inputTokens, outputTokens: result.outputTokens))
                )
                $0.chunks = 1
            }
            try await state.publish(jobID: job.id, sessionID: sessionID, attempt: job.attempt, event: .chunk(ChunkEvent(content: result.text, index: 0)))
            progress.withLockedValue { $0.timings.firstChunk(firstByte: firstByte - called, publish: clock.now - firstByte) }
        }
    }

    /// What a run that got as far as an outcome bills: nothing if the model was never called (cancelled before
    /// the start), else Bedrock's counts, or the chunks shown for a reply cut short.
    private func billedUsage(_ done: Progress, _ prepared: Prepared, outcome: Outcome) -> (input: Int, output: Int) {
        guard !(prepared.cancelledBeforeStart && done.chunks == 0) else { return (0, 0) }
        return done.billedUsage(estimatedInput: ContextWindow.estimatedPromptTokens(prepared.request), finished: outcome == .completed)
    }

    /// Finishes a job from its committed outcome: stores the turn (the user's message and the reply, in one
    /// write) and settles the credits side by side, then publishes `complete` and records the end. Every
    /// attempt that gets here writes the same documents and settles the same counts.
    private func finish(_ job: QueuedJob<InferenceJob>, _ outcome: JobOutcome) async throws {
        let request = job.payload
        // The model that answered: the job's, or the fallback whose prices are charged.
        let answered = outcome.modelID ?? request.modelId
        if outcome.status == .failed {
            // A failed run committed before it died: bill what it showed and give the job up.
            try await settle(job, modelID: answered, outcome: outcome)
            throw JobFailure.permanent(outcome.failure ?? "the generation failed")
        }
        let reply = NewMessage(
            sessionId: request.sessionId, jobId: job.id, role: .assistant, content: outcome.text, modelId: answered,
            status: outcome.status == .cancelled ? .cancelled : .complete, inputTokens: outcome.inputTokens, outputTokens: outcome.outputTokens,
            id: outcome.replyMessageID, attempt: outcome.attempt
        )
        async let settled = settle(job, modelID: answered, outcome: outcome)
        // The settlement is awaited whatever becomes of the write: a reply that was shown is billed even when
        // the database cannot take it now (the turn is then kept in Redis and stored later).
        let stored: Result<[ChatMessage]?, any Error>
        do {
            stored = .success(try await storeTurn(job, modelID: answered, reply: reply))
        } catch {
            stored = .failure(error)
        }
        let settlement = try await settled
        // A worker that lost the job or is draining publishes nothing more.
        if case .failure = stored { try Task.checkCancellation() }
        let turn: [ChatMessage]?
        var pending: PendingTurnKind?
        switch stored {
        case .success(let messages):
            turn = messages
        case .failure(let error):
            // The database cannot take the turn now: the job's record keeps it and `PendingTurns` stores it later.
            // The reply stands (it was shown and billed), so the job ends with it all the same.
            logger.warning("the database could not take a finished turn; kept for later", metadata: ["jobId": "\(job.id)", "error": "\(error)"])
            turn = nil
            pending = .reply
        }
        let complete = CompleteEvent(
            jobId: job.id, messageId: turn?.first(where: { $0.role == .assistant })?.id ?? (pending == nil ? nil : outcome.replyMessageID),
            content: outcome.text, modelId: answered,
            stopReason: outcome.stopReason, inputTokens: outcome.inputTokens, outputTokens: outcome.outputTokens,
            creditsCharged: settlement?.creditsUsed ?? 0, settlementPending: settlement == nil, latencyMs: outcome.latencyMs, spans: outcome.spans,
            fallbackFrom: outcome.modelID == nil ? nil : request.modelId
        )
        var ending = JobEnding(status: outcome.status, event: .complete(complete))
        ending.pendingTurn = pending
        if turn != nil {
            ending.turns = [HistoryTurn(jobID: job.id, role: .user, text: request.message)]
            if outcome.status == .completed { ending.turns.append(HistoryTurn(jobID: job.id, role: .assistant, text: outcome.text)) }
            ending.storedMessages = 2
            ending.storedBytes = request.message.utf8.count + outcome.text.utf8.count
        }
        if try await state.end(jobID: job.id, sessionID: request.sessionId, attempt: job.attempt, ending) == .stale {
            throw JobFenced(jobID: job.id, attempt: job.attempt)
        }
    }

    /// The user's message as the job stores it, under the id and time chat-api gave it.
    private func userMessage(_ job: QueuedJob<InferenceJob>, modelID: String) -> NewMessage {
        let request = job.payload
        return NewMessage(
            sessionId: request.sessionId, jobId: job.id, role: .user, content: request.message, modelId: modelID,
            id: request.messageId, createdAt: request.messageCreatedAt ?? request.requestedAt
        )
    }

    /// Stores the user's message and `reply` (if any) in one write and returns them as stored; nil when the
    /// session was deleted meanwhile (nowhere to keep them: what was generated is still billed and the job
    /// still ends).
    private func storeTurn(_ job: QueuedJob<InferenceJob>, modelID: String, reply: NewMessage?) async throws -> [ChatMessage]? {
        do {
            return try await store.appendMessages([userMessage(job, modelID: modelID)] + (reply.map { [$0] } ?? []))
        } catch let error as ChatError where error.kind == .notFound {
            logger.info("session deleted during generation; turn not stored", metadata: ["jobId": "\(job.id)"])
            return nil
        }
    }

    func abandon(_ job: QueuedJob<InferenceJob>, reason: String) async {
        let request = job.payload
        let nothing = JobOutcome(attempt: job.attempt, status: .failed, text: "", stopReason: "error", inputTokens: 0, outputTokens: 0, replyMessageID: nil)
        do {
            // First this attempt becomes the job's current one: from here on, an earlier attempt that stalled
            // (not died) can no longer commit, publish or end, so what is settled below is what stands.
            let committed: JobOutcome?
            switch try await state.takeForEnd(jobID: job.id, attempt: job.attempt) {
            case .ended, .stale:
                return
            case .gone:
                // Redis lost the job: nobody else will give its reservation back.
                _ = try? await settle(job, modelID: request.modelId, outcome: nothing)
                return
            case .open(let outcome):
                committed = outcome
            }
            if let committed, committed.status != .failed {
                // A reply was committed (its run died before finishing): it is what the client saw. Finish with it.
                do {
                    return try await finish(job, committed)
                } catch {
                    logger.error("could not finish a dead-lettered job from its committed reply; ending it with an error", metadata: ["jobId": "\(job.id)", "error": "\(error)"])
                }
            }
            // What a run committed is what it showed: bill that; else nothing. Idempotent. A failed outcome was
            // settled (and counted) by the run that committed it. A settlement that could be neither made nor
            // parked (accounting and Redis both failing) leaves the job open: the sweeper ends it when its lease
            // runs out and parks its settlement in the same step, so the reservation is never forgotten.
            do {
                _ = try await settle(job, modelID: committed?.modelID ?? request.modelId, outcome: committed ?? nothing)
            } catch {
                logger.error(
                    "could not settle a given-up job's reservation; leaving the job to the sweeper",
                    metadata: ["jobId": "\(job.id)", "error": "\(error)"]
                )
                return
            }
            // Throttled or not ready to the end of the model's chain: say so, for the client to try again later.
            let busy = Self.busyExceptions.first { reason.contains($0) }
            let chained = (catalog.model(id: request.modelId)?.fallbacks.isEmpty == false) ? "The model and its fallbacks are" : "The model is"
            let error = ErrorEvent(
                jobId: job.id, code: "GENERATION_FAILED",
                message: busy.map { "\(chained) busy now (\($0)); try again in a moment. You are charged only for what was delivered." }
                    ?? "The reply could not be generated. You are charged only for what was delivered."
            )
            var ending = JobEnding(status: .failed, event: .error(error))
            // The user's message is kept (a run stores it only with its reply).
            do {
                if try await storeTurn(job, modelID: committed?.modelID ?? request.modelId, reply: nil) != nil {
                    ending.turns = [HistoryTurn(jobID: job.id, role: .user, text: request.message)]
                    ending.storedMessages = 1
                    ending.storedBytes = request.message.utf8.count
                }
            } catch {
                logger.warning("could not store a failed job's message; kept for later", metadata: ["jobId": "\(job.id)", "error": "\(error)"])
                ending.pendingTurn = .user
            }
            try await state.end(jobID: job.id, sessionID: request.sessionId, attempt: job.attempt, ending)
        } catch {
            logger.error("could not report a failed job", metadata: ["jobId": "\(job.id)", "error": "\(error)"])
        }
    }

    enum Outcome { case completed, cancelled }

    /// A job requested longer ago than `reservationRenewal` (it waited in a long queue, or is re-run after its
    /// worker died) may have outlived its reservation, so the reservation is made again before the model is
    /// called. One that expired (the service refuses its id again) is replaced by a late one, `<id>:late`, which
    /// the settlement then charges. Refused for want of credits: `.paymentRequired` (the job fails, costing
    /// nothing). The accounting service unreachable: its error, and the job waits for a later attempt. So no
    /// reply runs without credits set aside for it.
    /// Returns the reservation that holds the reply's credits from now on, for the run to keep renewing.
    private func renewStaleReservation(_ job: QueuedJob<InferenceJob>) async throws -> String {
        let waited = Date().timeIntervalSince(job.payload.requestedAt)
        let reservation = job.payload.reservationId ?? job.id
        guard let estimate = job.payload.estimatedTokens, waited >= Double(reservationRenewal.milliseconds) / 1_000 else { return reservation }
        let token = signer.token(for: job.payload.userId)
        func reserve(_ id: String) async throws {
            _ = try await ledger.reserve(
                reservationID: id, sessionID: job.payload.sessionId, modelID: reservedModel(job), estimatedTokens: estimate, token: token
            )
        }
        do {
            try await reserve(reservation)
            return reservation
        } catch let error as ChatError where error.kind == .badRequest {
            logger.warning(
                "a job outlived its reservation; reserving its credits again under a late id",
                metadata: ["jobId": "\(job.id)", "waitedSeconds": "\(Int(waited))"]
            )
            do {
                try await reserve(reservation + ":late")
            } catch let late as ChatError where late.kind == .badRequest {
                // An earlier attempt made the late reservation already: it holds the credits.
            }
            return reservation + ":late"
        }
    }

    /// Runs `body` until it ends or the job must stop: a user's request to stop cancels `body` (closing the
    /// Bedrock stream) and throws `Cancelled`; a run whose attempt lost the job throws `JobFenced`. Meanwhile
    /// the reservation that holds the reply's credits (`reservationID`) is made again every `reservationRenewal`,
    /// which extends it.
    private func untilCancelled(
        _ job: QueuedJob<InferenceJob>, _ cancellation: JobCancellation, renewing reservationID: String,
        _ body: @escaping @Sendable () async throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await body()
                return true
            }
            if let estimate = job.payload.estimatedTokens {
                group.addTask {
                    // Keeps the reservation from expiring under a long reply: the same reservation, asked again.
                    while true {
                        try await Task.sleep(for: reservationRenewal)
                        do {
                            _ = try await ledger.reserve(
                                reservationID: reservationID, sessionID: job.payload.sessionId, modelID: reservedModel(job),
                                estimatedTokens: estimate, token: signer.token(for: job.payload.userId)
                            )
                        } catch is CancellationError {
                            throw CancellationError()
                        } catch {
                            logger.warning("could not extend a running reply's reservation", metadata: ["jobId": "\(job.id)", "error": "\(error)"])
                        }
                    }
                }
            }
            group.addTask {
                let reason = await cancellation.wait()
                // The wait also ends when this task is cancelled (the worker lost the job or is draining):
                // that is not the user's request to stop, and nothing of the run may be kept or billed.
                try Task.checkCancellation()
                if reason == .lost { throw JobFenced(jobID: job.id, attempt: job.attempt) }
                return false
            }
            defer { group.cancelAll() }
            guard try await group.next() == true else { throw Cancelled() }
        }
    }

    /// Finalizes the reservation (idempotent at the accounting service) with the tokens of `outcome`: success
    /// only for a completed reply. If the accounting service cannot take it now, the settlement is kept for
    /// `PendingSettlements` to retry and nil comes back: the reply stands and is not generated again.
    @discardableResult
    private func settle(_ job: QueuedJob<InferenceJob>, modelID: String, outcome: JobOutcome) async throws -> CreditSettlement? {
        let settlement = PendingSettlement(
            reservationID: job.payload.reservationId ?? job.id, userID: job.payload.userId, modelID: modelID, inputTokens: outcome.inputTokens,
            outputTokens: outcome.outputTokens, success: outcome.status == .completed, sessionID: job.payload.sessionId
        )
        do {
            return try await Settler(ledger: ledger, signer: signer, redis: pending.redis, logger: logger, catalog: catalog).settle(settlement)
        } catch let error as ChatError where error.kind == .unavailable || error.kind == .unauthorized {
            logger.warning("accounting did not take the settlement now; kept for retry", metadata: ["jobId": "\(job.id)", "error": "\(error)"])
            ChatMetrics.settlementParked()
            try await pending.add(settlement)
            return nil
        } catch let error as ChatError {
            // Refused for good (403, a rejected request): retrying will not help, and the reply stands; it is
            // given up for an operator, never generated again.
            var refused = settlement
            refused.lastError = "\(error)"
            logger.error("the accounting service refused a settlement", metadata: ["jobId": "\(job.id)", "error": "\(error)"])
            await pending.giveUp(refused)
            return nil
        }
    }
}

/// Where a run's time went before its first chunk reached Redis.
struct RunTimings: Sendable {
    var prepare: Duration = .zero
    var firstByte: Duration?
    var publish: Duration?

    mutating func firstChunk(firstByte: Duration, publish: Duration) {
        self.firstByte = firstByte
        self.publish = publish
    }

    /// The spans reported on `complete`, in milliseconds; nil when no chunk was published.
    func spans(pickup: Double) -> GenerationSpans? {
        guard let firstByte, let publish else { return nil }
        return GenerationSpans(pickup: pickup, prepare: prepare.fractionalMilliseconds, firstByte: firstByte.fractionalMilliseconds, publish: publish.fractionalMilliseconds)
    }
}

extension Duration {
    /// The duration in milliseconds, with fractions.
    var fractionalMilliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1_000 + Double(attoseconds) / 1e15
    }
}

/// What a run has produced so far.
struct Progress: Sendable {
    var accumulator = GenerationAccumulator()
    /// Chunks of text published.
    var chunks = 0
    /// The fallback that answered, when the job's own model could not (nil: the job's model).
    var modelID: String?
    var timings = RunTimings()

    /// Bedrock's counts where it reported them. A reply cut short (cancelled, failed) has no final count:
    /// the output is then at least the chunks received (each carries one token or more), and `estimatedInput`
    /// stands in for an input count never reported.
    func billedUsage(estimatedInput: Int, finished: Bool) -> (input: Int, output: Int) {
        let reported = accumulator.billedUsage
        let input = reported.input > 0 ? reported.input : estimatedInput
        return finished ? (input, reported.output) : (input, max(reported.output, chunks))
    }
}

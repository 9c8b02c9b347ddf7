import Bedrock
import ChatCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import ChatState
@testable import Queue
@testable import Worker

/// Sessions and messages in memory, for runs of the generation handler without MongoDB.
final class MemorySessionStore: SessionStore {
    private let state = NIOLockedValueBox((sessions: [String: ChatSession](), messages: [ChatMessage]()))

    func add(_ session: ChatSession) { state.withLockedValue { $0.sessions[session.id] = session } }
    func remove(_ sessionID: String) { state.withLockedValue { $0.sessions[sessionID] = nil } }
    var stored: [ChatMessage] { state.withLockedValue { $0.messages } }

    func createSession(userId: String, title: String, modelId: String?, systemPrompt: String?) async throws -> ChatSession { fatalError("not used") }
    func listSessions(userId: String, page: Int, limit: Int) async throws -> SessionPage { fatalError("not used") }
    func session(id: String, userId: String) async throws -> ChatSession? { state.withLockedValue { $0.sessions[id] }.flatMap { $0.userId == userId ? $0 : nil } }
    func session(id: String) async throws -> ChatSession? { state.withLockedValue { $0.sessions[id] } }
    func messages(sessionId: String, before: MessageCursor?, limit: Int) async throws -> [ChatMessage] {
        let all = state.withLockedValue { $0.messages.filter { $0.sessionId == sessionId } }
            .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        let older = before.map { cursor in all.filter { ($0.createdAt, $0.id) < (cursor.createdAt, cursor.id) } } ?? all
        return Array(older.suffix(limit))
    }
    func deleteSession(id: String, userId: String) async throws -> Bool { fatalError("not used") }
    func ping() async throws {}

    func appendMessages(_ messages: [NewMessage]) async throws -> [ChatMessage] {
        try state.withLockedValue { state in
            guard let first = messages.first, state.sessions[first.sessionId] != nil else {
                throw ChatError(.notFound, code: "SESSION_NOT_FOUND", message: "Session not found")
            }
            return messages.map { message in
                if let existing = state.messages.first(where: { $0.jobId == message.jobId && $0.role == message.role }) { return existing }
                let stored = ChatMessage(
                    id: message.id ?? ObjectIDs.next(), sessionId: message.sessionId, jobId: message.jobId, role: message.role, content: message.content,
                    modelId: message.modelId, status: message.status, inputTokens: message.inputTokens, outputTokens: message.outputTokens,
                    createdAt: message.createdAt ?? Date()
                )
                state.messages.append(stored)
                return stored
            }
        }
    }
}

/// A store whose writes fail: with `writes`, the first write is made and then reported failed (a connection
/// that broke after the write); without, every write fails and nothing is written (the database is down).
final class FailingAfterWriteStore: SessionStore {
    let inner: MemorySessionStore
    let writes: Bool
    private let failed = NIOLockedValueBox(false)

    init(_ inner: MemorySessionStore, writes: Bool = true) {
        self.inner = inner
        self.writes = writes
    }

    func createSession(userId: String, title: String, modelId: String?, systemPrompt: String?) async throws -> ChatSession {
        try await inner.createSession(userId: userId, title: title, modelId: modelId, systemPrompt: systemPrompt)
    }
    func listSessions(userId: String, page: Int, limit: Int) async throws -> SessionPage { try await inner.listSessions(userId: userId, page: page, limit: limit) }
    func session(id: String, userId: String) async throws -> ChatSession? { try await inner.session(id: id, userId: userId) }
    func session(id: String) async throws -> ChatSession? { try await inner.session(id: id) }
    func messages(sessionId: String, before: MessageCursor?, limit: Int) async throws -> [ChatMessage] {
        try await inner.messages(sessionId: sessionId, before: before, limit: limit)
    }
    func deleteSession(id: String, userId: String) async throws -> Bool { try await inner.deleteSession(id: id, userId: userId) }
    func ping() async throws {}

    func appendMessages(_ messages: [NewMessage]) async throws -> [ChatMessage] {
        guard writes else { throw ChatError(.unavailable, code: "DATABASE_UNAVAILABLE", message: "The database is unavailable") }
        let stored = try await inner.appendMessages(messages)
        let first = failed.withLockedValue { already in
            defer { already = true }
            return !already
        }
        if first {
            throw ChatError(.unavailable, code: "DATABASE_UNAVAILABLE", message: "The connection broke after the write")
        }
        return stored
    }
}

/// A ledger that records every settlement.
final class RecordingLedger: CreditLedger {
    struct Settlement: Equatable { var reservationID: String; var input: Int; var output: Int; var success: Bool }
    private let settlements = NIOLockedValueBox([Settlement]())
    private let reservations = NIOLockedValueBox([(id: String, tokens: Int)]())
    private let models = NIOLockedValueBox([String]())
    var settled: [Settlement] { settlements.withLockedValue { $0 } }
    /// The model of each settlement, in order.
    var settledModels: [String] { models.withLockedValue { $0 } }
    /// Every reservation asked for, in order (the same one again extends it).
    var reserved: [(id: String, tokens: Int)] { reservations.withLockedValue { $0 } }

    func hasCredits(_ credits: Double, token: String) async throws -> Bool { true }
    func reserve(reservationID: String, sessionID: String, modelID: String, estimatedTokens: Int, token: String) async throws -> CreditReservation {
        reservations.withLockedValue { $0.append((reservationID, estimatedTokens)) }
        return CreditReservation(id: reservationID, allocatedCredits: Double(estimatedTokens))
    }
    func finalize(reservationID: String, modelID: String, inputTokens: Int, outputTokens: Int, success: Bool, token: String) async throws -> CreditSettlement {
        settlements.withLockedValue { $0.append(Settlement(reservationID: reservationID, input: inputTokens, output: outputTokens, success: success)) }
        models.withLockedValue { $0.append(modelID) }
        return CreditSettlement(creditsUsed: Double(inputTokens + outputTokens), refund: 0)
    }
}

/// A ledger whose reservations answer as `refusal` says (nil: made); settlements are recorded, or fail with
/// `finalizeError`.
final class ScriptedLedger: CreditLedger {
    let refusal: @Sendable (String) -> ChatError?
    let finalizeError: ChatError?
    private let reservations = NIOLockedValueBox([String]())
    private let settlements = NIOLockedValueBox([RecordingLedger.Settlement]())
    var reserved: [String] { reservations.withLockedValue { $0 } }
    var settled: [RecordingLedger.Settlement] { settlements.withLockedValue { $0 } }

    init(finalizeError: ChatError? = nil, refusal: @escaping @Sendable (String) -> ChatError?) {
        self.refusal = refusal
        self.finalizeError = finalizeError
    }

    func hasCredits(_ credits: Double, token: String) async throws -> Bool { true }
    func reserve(reservationID: String, sessionID: String, modelID: String, estimatedTokens: Int, token: String) async throws -> CreditReservation {
        reservations.withLockedValue { $0.append(reservationID) }
        if let error = refusal(reservationID) { throw error }
        return CreditReservation(id: reservationID, allocatedCredits: Double(estimatedTokens))
    }
    func finalize(reservationID: String, modelID: String, inputTokens: Int, outputTokens: Int, success: Bool, token: String) async throws -> CreditSettlement {
        if let finalizeError { throw finalizeError }
        settlements.withLockedValue { $0.append(.init(reservationID: reservationID, input: inputTokens, output: outputTokens, success: success)) }
        return CreditSettlement(creditsUsed: Double(inputTokens + outputTokens), refund: 0)
    }
}

/// A one-shot gate: `wait` returns once `open` was called (before or after).
final class Gate: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() { (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1)) }

    func open() {
        continuation.yield()
        continuation.finish()
    }

    func wait() async {
        for await _ in stream { return }
    }
}

/// A model that streams the words it is given, `pace` apart, and counts its calls and what it was asked; with
/// `hold`, it stops before word `hold.index` until the gate opens (a worker stalled mid-stream).
final class ScriptedGenerator: TextGenerator {
    let words: [String]
    let pace: Duration
    let hold: (index: Int, gate: Gate)?
    /// Models that answer ThrottlingException, and models that answer ValidationException, before any chunk.
    let busy: Set<String>
    let refusing: Set<String>
    /// Models that answer AccessDeniedException (not enabled in the account) before any chunk.
    let denied: Set<String>
    private let asked = NIOLockedValueBox([GenerationRequest]())
    private let called = NIOLockedValueBox([String]())
    var requests: [GenerationRequest] { asked.withLockedValue { $0 } }
    /// The model of every call, in order.
    var models: [String] { called.withLockedValue { $0 } }

    init(
        words: [String], pace: Duration = .zero, hold: (index: Int, gate: Gate)? = nil, busy: Set<String> = [], refusing: Set<String> = [],
        denied: Set<String> = []
    ) {
        self.denied = denied
        self.words = words
        self.pace = pace
        self.hold = hold
        self.busy = busy
        self.refusing = refusing
    }

    func stream(model: ModelInfo, request: GenerationRequest) async throws -> any AsyncSequence<ChunkDelta, any Error> {
        called.withLockedValue { $0.append(model.id) }
        if busy.contains(model.id) { throw BedrockError(code: "ThrottlingException", message: "Too many requests", statusCode: 429) }
        if refusing.contains(model.id) { throw BedrockError(code: "ValidationException", message: "No", statusCode: 400) }
        if denied.contains(model.id) { throw BedrockError(code: "AccessDeniedException", message: "Not enabled", statusCode: 403) }
        asked.withLockedValue { $0.append(request) }
        let (words, pace, hold) = (self.words, self.pace, self.hold)
        return AsyncThrowingStream<ChunkDelta, any Error> { continuation in
            let task = Task {
                for (index, word) in words.enumerated() {
                    if let hold, hold.index == index { await hold.gate.wait() }
                    if pace > .zero { try? await Task.sleep(for: pace) }
                    if Task.isCancelled { break }
                    let last = index == words.count - 1
                    continuation.yield(
                        ChunkDelta(text: word + (last ? "" : " "), stopReason: last ? .endTurn : nil, usage: last ? TokenUsage(inputTokens: 7, outputTokens: words.count) : nil)
                    )
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    func whole(model: ModelInfo, request: GenerationRequest) async throws -> GenerationResult {
        throw TestFailure("these tests stream")
    }
}

/// A generation handler over real Redis with an in-memory store, ledger and model.
struct HandlerFixture {
    let redis: RedisClient
    let store = MemorySessionStore()
    let ledger = RecordingLedger()
    let cache: SessionCache
    let state: GenerationState
    let events: SessionEvents
    let running: RunningJobs
    let session: ChatSession

    init() throws {
        redis = try testRedisClient()
        cache = SessionCache(redis: redis)
        state = GenerationState(redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"))
        events = SessionEvents(redis: redis)
        running = RunningJobs(redis: redis, state: state, logger: Logger(label: "test.running"))
        session = ChatSession(id: ObjectIDs.next(), userId: "u-\(UUID().uuidString.prefix(6))", title: "t", modelId: nil, createdAt: Date(), updatedAt: Date(), messageCount: 0)
        store.add(session)
    }

    /// A handler with `generator`; `store` and `worker` (another process's running jobs) default to the fixture's.
    func handler(
        _ generator: ScriptedGenerator, store: (any SessionStore)? = nil, worker: RunningJobs? = nil, ledger: (any CreditLedger)? = nil,
        settlements: PendingSettlements? = nil
    ) throws -> GenerationHandler {
        let signer = UserTokenSigner(try AccessTokenVerifier(secret: APIFixture.secret))
        let ledger = ledger ?? self.ledger
        return GenerationHandler(
            generator: generator, store: store ?? self.store, state: state, cache: cache, ledger: ledger, signer: signer,
            pending: settlements ?? PendingSettlements(redis: redis, ledger: ledger, signer: signer, interval: .seconds(10), logger: Logger(label: "test.pending")),
            running: worker ?? running, maxOutputTokens: 256, maxAttempts: 3, logger: Logger(label: "test.handler")
        )
    }

    /// The same job at its next attempt, as another worker holds it after a takeover.
    func takeOver(_ job: QueuedJob<InferenceJob>) -> QueuedJob<InferenceJob> {
        QueuedJob(id: job.id, entryID: job.entryID, payload: job.payload, attempt: job.attempt + 1, consumer: "other")
    }

    /// Another worker process's running jobs.
    func otherWorker() -> RunningJobs {
        RunningJobs(redis: redis, state: state, logger: Logger(label: "test.other"))
    }

    /// A job begun the way chat-api begins one (session cached, unless `cached` is false: then the cache is left
    /// as it is; claimed, recorded).
    func job(_ message: String, cached: Bool = true) async throws -> (QueuedJob<InferenceJob>, JobRecord) {
        if cached { try await cache.created(session) }
        let jobID = UUID().uuidString
        let messageID = ObjectIDs.next()
        guard case .started(let record, let summary) = try await state.begin(
            jobID: jobID, sessionID: session.id, userID: session.userId, requestedModel: nil, defaultModel: ModelCatalog.builtIn.defaultModelID,
            message: message, messageID: messageID, reservationID: "r-" + jobID
        ) else { throw TestFailure("the job did not begin") }
        let payload = InferenceJob(
            sessionId: session.id, userId: session.userId, modelId: summary.modelID, message: message, streaming: true, messageId: messageID,
            reservationId: "r-" + jobID, estimatedTokens: 500
        )
        return (QueuedJob(id: jobID, entryID: "0-1", payload: payload, attempt: 1), record)
    }

    /// Runs the process's cancellation reader beside `body`.
    func withRunningJobs<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await running.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }
}

@Suite("The generation handler's stages with an in-memory store, ledger and model over real Redis", .timeLimit(.minutes(1)))
struct GenerationHandlerTests {
    @Test("a model busy before its first chunk gives way to its fallback: the events, the stored reply, the commit and the bill name the fallback")
    func fallback() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let haiku = ModelCatalog.builtIn.defaultModelID
        let nova = try #require(ModelCatalog.builtIn.model(id: haiku)?.fallbacks.first)
        let generator = ScriptedGenerator(words: ["from", "the", "fallback"], busy: [haiku])
        var handler = try fixture.handler(generator)
        handler.fallbackBackoff = Backoff(base: .milliseconds(1), maximum: .milliseconds(1))
        let (job, record) = try await fixture.job("hello there")
        try await handler.run(job)
        #expect(generator.models == [haiku, nova])
        let stored = try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID)
        #expect(stored.map(\.type) == ["model", "model", "chunk", "chunk", "chunk", "complete"])
        guard case .model(let switched)? = try ChatEvent.decode(type: .model, data: stored[1].data),
            case .complete(let complete)? = try ChatEvent.decode(type: .complete, data: stored.last?.data ?? "")
        else { throw TestFailure("no model or complete event") }
        #expect(switched.modelId == nova && switched.fallbackFrom == haiku)
        #expect(complete.modelId == nova && complete.fallbackFrom == haiku && complete.content == "from the fallback")
        #expect(fixture.store.stored.map(\.modelId) == [nova, nova])
        #expect(try await fixture.state.outcome(jobID: job.id)?.modelID == nova)
        #expect(fixture.ledger.settledModels == [nova])

        // A fallback that refuses the request: the attempt fails with the first model's throttling, for the queue
        // to try again; nothing is billed or stored.
        let refused = ScriptedGenerator(words: ["x"], busy: [haiku], refusing: [nova])
        var second = try fixture.handler(refused)
        second.fallbackBackoff = Backoff(base: .milliseconds(1), maximum: .milliseconds(1))
        let (other, _) = try await fixture.job("again")
        await #expect { try await second.run(other) } throws: { ($0 as? BedrockError)?.code == "ThrottlingException" }
        #expect(refused.models == [haiku, nova])
        #expect(fixture.ledger.settledModels == [nova])

        // A fallback not enabled in the account is passed over for the next one.
        func model(_ id: String) -> ModelInfo {
            ModelInfo(id: id, name: id, family: .amazonNova, contextWindow: 10_000, maxOutputTokens: 1_000, inputCreditsPer1K: 1, outputCreditsPer1K: 1)
        }
        var primary = try #require(ModelCatalog.builtIn.model(id: haiku))
        primary.fallbacks = ["x.denied", "y.fine"]
        let skipping = ScriptedGenerator(words: ["third", "time"], busy: [haiku], denied: ["x.denied"])
        // (In a session of its own: the job above still holds its session, for the queue to try it again.)
        let fresh = try HandlerFixture()
        defer { fresh.redis.shutdown() }
        var third = try fresh.handler(skipping)
        third.catalog = try ModelCatalog(models: [primary, model("x.denied"), model("y.fine")], defaultModelID: haiku)
        third.fallbackBackoff = Backoff(base: .milliseconds(1), maximum: .milliseconds(1))
        let (last, _) = try await fresh.job("once more")
        try await third.run(last)
        #expect(skipping.models == [haiku, "x.denied", "y.fine"])
        #expect(try await fresh.state.outcome(jobID: last.id)?.modelID == "y.fine")

        // A fallback that cannot take the message's settings is passed over.
        var prepared = GenerationHandler.Prepared(
            model: try #require(ModelCatalog.builtIn.model(id: haiku)), request: GenerationRequest(turns: [], maxTokens: 10), cancelledBeforeStart: false
        )
        let titan = try #require(ModelCatalog.builtIn.model(id: "amazon.titan-text-express-v1"))
        prepared.chain = [prepared.model, titan, try #require(ModelCatalog.builtIn.model(id: nova))]
        #expect(handler.usableChain(prepared, settings: InferenceSettings(maxTokens: 4_000, stopSequences: ["END"])).map(\.id) == [haiku, nova])
        #expect(handler.usableChain(prepared, settings: InferenceSettings(maxTokens: 4_000)).map(\.id) == [haiku, titan.id, nova])
    }

    @Test("a run streams the model's words as chunks, stores both messages, settles once with the model's counts, ends with complete, and feeds the next run's history")
    func completeRun() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let generator = ScriptedGenerator(words: ["one", "two", "three"])
        let handler = try fixture.handler(generator)
        let (job, record) = try await fixture.job("hello there")
        try await handler.run(job)
        let stored = try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID)
        #expect(stored.map(\.type) == ["model", "chunk", "chunk", "chunk", "complete"])
        guard case .complete(let complete)? = try ChatEvent.decode(type: .complete, data: stored.last?.data ?? "") else {
            throw TestFailure("no complete event")
        }
        #expect(complete.content == "one two three" && complete.inputTokens == 7 && complete.outputTokens == 3 && complete.stopReason == "end_turn")
        #expect(complete.spans != nil)
        #expect(fixture.store.stored.map(\.role) == [.user, .assistant])
        #expect(fixture.store.stored.first?.id == job.payload.messageId)
        #expect(fixture.ledger.settled == [.init(reservationID: "r-" + job.id, input: 7, output: 3, success: true)])
        #expect(try await fixture.state.record(jobID: job.id)?.status == .completed)
        #expect(try await fixture.cache.history(sessionID: fixture.session.id)?.map(\.text) == ["hello there", "one two three"])
        // The next run sends the model the history from the cache, then its own message.
        let (next, _) = try await fixture.job("and then?")
        try await handler.run(next)
        #expect(generator.requests.last?.turns.map(\.text) == ["hello there", "one two three", "and then?"])
        // A delivery after the end does nothing.
        try await handler.run(next)
        #expect(generator.requests.count == 2 && fixture.ledger.settled.count == 2)
    }

    @Test("a cancellation asked before the run starts never calls the model and bills nothing")
    func cancelledBeforeStart() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let generator = ScriptedGenerator(words: ["never"])
        let handler = try fixture.handler(generator)
        let (job, _) = try await fixture.job("stop me")
        _ = try await fixture.state.cancelActive(sessionID: fixture.session.id)
        try await handler.run(job)
        #expect(generator.requests.isEmpty)
        #expect(fixture.ledger.settled == [.init(reservationID: "r-" + job.id, input: 0, output: 0, success: false)])
        #expect(try await fixture.state.record(jobID: job.id)?.status == .cancelled)
        #expect(fixture.store.stored.first(where: { $0.role == .assistant })?.status == .cancelled)
    }

    @Test("a cancellation during the stream reaches the run through the process's one reader: partial reply kept as cancelled, billed for what was generated")
    func cancelledMidStream() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let generator = ScriptedGenerator(words: (0..<200).map { "w\($0)" }, pace: .milliseconds(20))
        let handler = try fixture.handler(generator)
        let (job, record) = try await fixture.job("long one")
        try await fixture.withRunningJobs {
            async let run: Void = handler.run(job)
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(20)
            while try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID).filter({ $0.type == "chunk" }).count < 3, clock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            _ = try await fixture.state.cancelActive(sessionID: fixture.session.id)
            try await run
        }
        let stored = try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID)
        let chunks = stored.filter { $0.type == "chunk" }.count
        #expect(chunks >= 3 && chunks < 200)
        guard case .complete(let complete)? = try ChatEvent.decode(type: .complete, data: stored.last?.data ?? "") else {
            throw TestFailure("no complete event")
        }
        #expect(complete.stopReason == "cancelled")
        #expect(fixture.ledger.settled.count == 1 && fixture.ledger.settled[0].output == chunks && fixture.ledger.settled[0].success == false)
        #expect(fixture.store.stored.last?.status == .cancelled)
        #expect(try await fixture.state.record(jobID: job.id)?.status == .cancelled)
        // Only the user's turn joins the history: a cancelled reply is not shown to the model again.
        #expect(try await fixture.cache.history(sessionID: fixture.session.id)?.map(\.role) == [.user])
    }

    @Test("a session deleted before the user's message is stored: the reply is billed, nothing is stored, the job ends")
    func sessionGone() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let handler = try fixture.handler(ScriptedGenerator(words: ["a", "b"]))
        let (job, _) = try await fixture.job("hello")
        fixture.store.remove(fixture.session.id)
        try await handler.run(job)
        #expect(fixture.store.stored.isEmpty)
        #expect(fixture.ledger.settled == [.init(reservationID: "r-" + job.id, input: 7, output: 2, success: true)])
        #expect(try await fixture.state.record(jobID: job.id)?.status == .completed)
    }

    @Test("a job given up (dead-lettered, or failed for good) keeps the user's message alone, once, and ends with an error")
    func abandonedJobKeepsTheUserMessage() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let generator = ScriptedGenerator(words: ["fine"])
        let handler = try fixture.handler(generator)
        // A first job completes, so the session's history is cached.
        let (first, _) = try await fixture.job("first")
        try await handler.run(first)
        let (job, record) = try await fixture.job("will fail", cached: false)
        await handler.abandon(job, reason: "test")
        await handler.abandon(job, reason: "test again")
        #expect(fixture.store.stored.filter { $0.jobId == job.id }.map(\.role) == [.user])
        #expect(fixture.store.stored.last?.id == job.payload.messageId && fixture.store.stored.last?.content == "will fail")
        #expect(try await fixture.state.record(jobID: job.id)?.status == .failed)
        let stored = try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID)
        #expect(stored.map(\.type) == ["error"])
        // One refund for the abandoned job (the second abandon found it ended), after the first job's charge.
        #expect(fixture.ledger.settled.count == 2)
        #expect(fixture.ledger.settled.last == .init(reservationID: "r-" + job.id, input: 0, output: 0, success: false))
        // A failed job makes the cache forget the history (its counts still go up); the next run reads the
        // store, where the message was kept.
        let history = try await fixture.cache.history(sessionID: fixture.session.id)
        #expect(history == nil)
        #expect(try await fixture.redis.hgetall(SessionCache.metaKey(fixture.session.id))["messageCount"] == "3")
        let (next, _) = try await fixture.job("again", cached: false)
        try await handler.run(next)
        #expect(generator.requests.last?.turns.map(\.text) == ["first", "fine", "will fail", "again"])
    }

    @Test("a worker stalled mid-stream past a takeover publishes, stores and bills nothing more: the client sees one consistent reply")
    func stalledWorkerIsFenced() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let gate = Gate()
        let stalled = try fixture.handler(ScriptedGenerator(words: (0..<10).map { "old\($0)" }, hold: (3, gate)))
        let (job, record) = try await fixture.job("hello")
        let first = Task { try await stalled.run(job) }
        try await expectEventually {
            try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID).filter { $0.type == "chunk" }.count == 3
        }
        // The worker is paused past the visibility timeout; another takes the job over and runs it to its end.
        let current = try fixture.handler(ScriptedGenerator(words: ["new", "text"]), worker: fixture.otherWorker())
        try await current.run(fixture.takeOver(job))
        let settledBefore = fixture.ledger.settled
        gate.open()
        await #expect(throws: JobFenced.self) { try await first.value }

        let stored = try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID)
        let afterReset = stored.split { $0.type == "reset" }.last.map(Array.init) ?? []
        #expect(afterReset.map(\.type) == ["model", "chunk", "chunk", "complete"])
        #expect(stored.last?.type == "complete")
        guard case .complete(let complete)? = try ChatEvent.decode(type: .complete, data: stored.last?.data ?? "") else { throw TestFailure("no complete") }
        let shown = afterReset.filter { $0.type == "chunk" }.compactMap { event -> String? in
            guard case .chunk(let chunk)? = try? ChatEvent.decode(type: .chunk, data: event.data) else { return nil }
            return chunk.content
        }.joined()
        #expect(complete.content == "new text" && shown == "new text")
        #expect(fixture.store.stored.filter { $0.role == .assistant }.map(\.content) == ["new text"])
        #expect(fixture.ledger.settled == settledBefore)
        #expect(fixture.ledger.settled.map(\.output) == [2])
        let ended = try #require(try await fixture.state.record(jobID: job.id))
        #expect(ended.status == .completed && ended.attempt == 2)
        #expect(try await fixture.state.activeJob(sessionID: fixture.session.id) == nil)
    }

    @Test("a re-run after an attempt committed its reply and died never calls the model: same text, same bill, no reset")
    func rerunFinishesFromTheCommit() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let (job, record) = try await fixture.job("hello")
        // Attempt 1 streamed two chunks, committed its reply, and died before storing it.
        _ = try await fixture.state.startRun(
            jobID: job.id, sessionID: fixture.session.id, attempt: 1, reset: nil, model: .model(ModelEvent(jobId: job.id, modelId: "m", attempt: 1))
        )
        for (index, piece) in ["first ", "answer"].enumerated() {
            try await fixture.state.publish(jobID: job.id, sessionID: fixture.session.id, attempt: 1, event: .chunk(ChunkEvent(content: piece, index: index)))
        }
        let outcome = JobOutcome(attempt: 1, status: .completed, text: "first answer", stopReason: "end_turn", inputTokens: 7, outputTokens: 2, replyMessageID: ObjectIDs.next())
        #expect(try await fixture.state.commit(jobID: job.id, outcome) == .committed)

        let rerunModel = ScriptedGenerator(words: ["another", "answer", "entirely"])
        try await fixture.handler(rerunModel, worker: fixture.otherWorker()).run(fixture.takeOver(job))
        #expect(rerunModel.requests.isEmpty)
        let stored = try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID)
        #expect(stored.map(\.type) == ["model", "chunk", "chunk", "complete"])
        guard case .complete(let complete)? = try ChatEvent.decode(type: .complete, data: stored.last?.data ?? "") else { throw TestFailure("no complete") }
        let replies = fixture.store.stored.filter { $0.role == .assistant }
        #expect(complete.content == "first answer" && replies.map(\.content) == ["first answer"])
        #expect(complete.messageId == outcome.replyMessageID && replies.first?.id == outcome.replyMessageID)
        #expect(fixture.ledger.settled == [.init(reservationID: "r-" + job.id, input: 7, output: 2, success: true)])
        #expect(try await fixture.state.record(jobID: job.id)?.status == .completed)
    }

    @Test("a turn the database cannot take at the end is kept in Redis: the reply still completes, and the turn is stored once MongoDB is back")
    func turnKeptWhileTheDatabaseIsDown() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let down = FailingAfterWriteStore(fixture.store, writes: false)
        let handler = try fixture.handler(ScriptedGenerator(words: ["kept", "for", "later"]), store: down)
        let (job, record) = try await fixture.job("hello")
        try await handler.run(job)
        let stored = try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID)
        guard case .complete(let complete)? = try ChatEvent.decode(type: .complete, data: stored.last?.data ?? "") else { throw TestFailure("no complete") }
        #expect(complete.content == "kept for later" && complete.messageId != nil)
        #expect(fixture.store.stored.isEmpty)
        #expect(try await fixture.state.pendingTurnJobs() == [job.id])
        #expect(fixture.ledger.settled.count == 1)

        let turns = PendingTurns(state: fixture.state, store: fixture.store, logger: Logger(label: "test.turns"))
        #expect(await turns.retry() == 1)
        #expect(fixture.store.stored.map(\.content) == ["hello", "kept for later"])
        #expect(fixture.store.stored.last?.id == complete.messageId && fixture.store.stored.first?.id == job.payload.messageId)
        #expect(try await fixture.state.pendingTurnJobs().isEmpty)
        #expect(try await fixture.state.pendingMessage(jobID: job.id) == nil)
    }

    @Test("a settlement the accounting service refuses for good never re-runs the job: the reply stands, the settlement is given up for an operator")
    func refusedSettlementDoesNotRerun() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let refusing = RefusingLedger(error: ChatError(.badRequest, code: "ACCOUNTING_REJECTED", message: "400"))
        var settlements = PendingSettlements(
            redis: fixture.redis, ledger: refusing, signer: UserTokenSigner(try AccessTokenVerifier(secret: APIFixture.secret)), interval: .seconds(60),
            logger: Logger(label: "test.pending")
        )
        settlements.pendingKey = uniqueKey("pending")
        settlements.failedKey = uniqueKey("failed")
        let generator = ScriptedGenerator(words: ["kept", "anyway"])
        let handler = try fixture.handler(generator, ledger: refusing, settlements: settlements)
        let (job, record) = try await fixture.job("hello")
        try await handler.run(job)
        #expect(generator.requests.count == 1)
        let stored = try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID)
        guard case .complete(let complete)? = try ChatEvent.decode(type: .complete, data: stored.last?.data ?? "") else { throw TestFailure("no complete") }
        #expect(complete.content == "kept anyway" && complete.settlementPending)
        #expect(try await fixture.state.record(jobID: job.id)?.status == .completed)
        #expect(try await fixture.redis.hgetall(settlements.failedKey)[job.payload.reservationId ?? ""] != nil)
        #expect(try await fixture.redis.hgetall(settlements.pendingKey).isEmpty)
    }

    @Test("a session deleted while its reply streams ends the job at once (no retry): billed for what was shown, nothing stored")
    func sessionDeletedMidStream() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let gate = Gate()
        let handler = try fixture.handler(ScriptedGenerator(words: ["a", "b", "c"], hold: (2, gate)))
        let (job, record) = try await fixture.job("hello")
        let run = Task { try await handler.run(job) }
        try await expectEventually {
            try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID).filter { $0.type == "chunk" }.count == 2
        }
        fixture.store.remove(fixture.session.id)
        try await fixture.cache.deleted(sessionID: fixture.session.id)
        gate.open()
        try await run.value
        #expect(fixture.store.stored.isEmpty)
        #expect(fixture.ledger.settled.count == 1 && fixture.ledger.settled[0].output == 3)
        #expect(try await fixture.state.record(jobID: job.id)?.status == .completed)
        #expect(try await fixture.state.activeJob(sessionID: fixture.session.id) == nil)
    }

    @Test("a dead letter first takes the job from a stalled attempt: that attempt can no longer commit, and the refund stands")
    func deadLetterFencesTheStalledAttempt() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let handler = try fixture.handler(ScriptedGenerator(words: ["never"]))
        let (job, record) = try await fixture.job("hello")
        // Attempt 1 started and stalled (paused, not dead); the queue dead-letters the job at attempt 2.
        _ = try await fixture.state.startRun(
            jobID: job.id, sessionID: fixture.session.id, attempt: 1, reset: nil, model: .model(ModelEvent(jobId: job.id, modelId: "m", attempt: 1))
        )
        await handler.abandon(fixture.takeOver(job), reason: "the job was not finished after 1 attempts")
        let late = JobOutcome(attempt: 1, status: .completed, text: "free?", stopReason: "end_turn", inputTokens: 5, outputTokens: 5, replyMessageID: ObjectIDs.next())
        #expect(try await fixture.state.commit(jobID: job.id, late) == .refused)
        #expect(fixture.ledger.settled == [.init(reservationID: "r-" + job.id, input: 0, output: 0, success: false)])
        let stored = try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID)
        #expect(stored.last?.type == "error")
        #expect(fixture.store.stored.map(\.role) == [.user])
    }

    @Test("a dead-lettered job whose attempt committed its reply is finished with that reply: stored, billed, complete")
    func deadLetterFinishesACommittedReply() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let handler = try fixture.handler(ScriptedGenerator(words: ["never"]))
        let (job, record) = try await fixture.job("hello")
        _ = try await fixture.state.startRun(
            jobID: job.id, sessionID: fixture.session.id, attempt: 1, reset: nil, model: .model(ModelEvent(jobId: job.id, modelId: "m", attempt: 1))
        )
        let outcome = JobOutcome(attempt: 1, status: .completed, text: "the answer", stopReason: "end_turn", inputTokens: 4, outputTokens: 2, replyMessageID: ObjectIDs.next())
        #expect(try await fixture.state.commit(jobID: job.id, outcome) == .committed)
        await handler.abandon(fixture.takeOver(job), reason: "the job was not finished after 1 attempts")
        let stored = try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID)
        guard case .complete(let complete)? = try ChatEvent.decode(type: .complete, data: stored.last?.data ?? "") else { throw TestFailure("no complete") }
        #expect(complete.content == "the answer" && complete.messageId == outcome.replyMessageID)
        #expect(fixture.store.stored.map(\.content) == ["hello", "the answer"])
        #expect(fixture.ledger.settled == [.init(reservationID: "r-" + job.id, input: 4, output: 2, success: true)])
        #expect(try await fixture.state.status(jobID: job.id) == .completed)
    }

    @Test("a long reply makes its reservation again while it runs, so the reservation does not expire under it")
    func reservationExtendedWhileRunning() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        var handler = try fixture.handler(ScriptedGenerator(words: (0..<12).map { "w\($0)" }, pace: .milliseconds(40)))
        handler.reservationRenewal = .milliseconds(100)
        let (job, _) = try await fixture.job("long")
        try await handler.run(job)
        let renewals = fixture.ledger.reserved
        #expect(renewals.count >= 2)
        #expect(renewals.allSatisfy { $0.id == "r-" + job.id && $0.tokens == 500 })
    }

    @Test("a job that waited longer than its reservation is sure to live reserves again before the model is called: no credits left, it fails and costs nothing; expired, a late reservation takes its place")
    func staleReservationRenewedBeforeRunning() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        /// The job as it comes out of a long wait in the queue.
        func waited(_ job: QueuedJob<InferenceJob>) -> QueuedJob<InferenceJob> {
            var payload = job.payload
            payload.requestedAt = Date().addingTimeInterval(-3_600)
            return QueuedJob(id: job.id, entryID: job.entryID, payload: payload, attempt: job.attempt)
        }
        // The user's credits are gone meanwhile: the reservation cannot be made again.
        let broke = ScriptedGenerator(words: ["never"])
        let refusing = ScriptedLedger { id in id.hasSuffix(":late") ? ChatError(.paymentRequired, code: "INSUFFICIENT_CREDITS", message: "Insufficient credits") : ChatError(.badRequest, code: "ACCOUNTING_REJECTED", message: "409") }
        let (job, record) = try await fixture.job("after a long wait")
        let handler = try fixture.handler(broke, ledger: refusing)
        // A failure for good: the job processor then gives the job up, as here.
        await #expect(throws: JobFailure.self) { try await handler.run(waited(job)) }
        await handler.abandon(waited(job), reason: "INSUFFICIENT_CREDITS")
        #expect(broke.requests.isEmpty, "the model was called without credits set aside")
        #expect(refusing.reserved == ["r-" + job.id, "r-" + job.id + ":late"])
        #expect(refusing.settled.allSatisfy { $0.input == 0 && $0.output == 0 && !$0.success })
        #expect(try await fixture.state.record(jobID: job.id)?.status == .failed)
        let events = try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID)
        #expect(events.last?.type == "error")

        // The reservation expired but credits remain: a late reservation holds them, and the reply runs.
        // While the reply runs, the late reservation (not the expired one) is the one kept alive.
        let paid = ScriptedGenerator(words: ["late", "but", "paid", "for"], pace: .milliseconds(120))
        let expired = ScriptedLedger { id in id.hasSuffix(":late") ? nil : ChatError(.badRequest, code: "ACCOUNTING_REJECTED", message: "409") }
        let (second, _) = try await fixture.job("after another wait")
        var renewing = try fixture.handler(paid, ledger: expired)
        renewing.reservationRenewal = .milliseconds(100)
        try await renewing.run(waited(second))
        #expect(paid.requests.count == 1)
        #expect(Array(expired.reserved.prefix(2)) == ["r-" + second.id, "r-" + second.id + ":late"])
        #expect(expired.reserved.count >= 3 && expired.reserved.dropFirst(2).allSatisfy { $0 == "r-" + second.id + ":late" }, "\(expired.reserved)")
        #expect(try await fixture.state.record(jobID: second.id)?.status == .completed)

        // A job that did not wait reserves nothing more before it runs.
        let quick = ScriptedLedger { _ in nil }
        let (third, _) = try await fixture.job("at once")
        try await fixture.handler(ScriptedGenerator(words: ["fast"]), ledger: quick).run(third)
        #expect(quick.reserved.isEmpty)
    }

    @Test("a given-up job whose settlement can be neither made nor parked stays open, and the sweeper ends it and parks its settlement: no reservation is forgotten")
    func unsettledAbandonLeftToSweeper() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        var unreachable = RedisConfiguration(host: "127.0.0.1", port: TestEnvironment.freePort())
        unreachable.connectTimeout = .milliseconds(200)
        let deadRedis = RedisClient(configuration: unreachable)
        defer { deadRedis.shutdown() }
        let outage = ChatError(.unavailable, code: "ACCOUNTING_UNAVAILABLE", message: "down")
        let down = ScriptedLedger(finalizeError: outage) { _ in outage }
        let signer = UserTokenSigner(try AccessTokenVerifier(secret: APIFixture.secret))
        let parking = PendingSettlements(redis: deadRedis, ledger: down, signer: signer, interval: .seconds(10), logger: Logger(label: "test.pending"))
        let handler = try fixture.handler(ScriptedGenerator(words: ["never"]), ledger: down, settlements: parking)
        let (job, _) = try await fixture.job("given up")
        await handler.abandon(job, reason: "dead letter")
        #expect(try await fixture.state.record(jobID: job.id)?.status.isFinal == false, "the job was ended with its settlement lost")
        #expect(try await fixture.redis.send("ZSCORE", fixture.state.openJobsKey, job.id).string != nil)
        // Its lease runs out; the sweeper ends it and parks its refund in one step.
        _ = try await fixture.redis.send("ZADD", fixture.state.openJobsKey, "0", job.id)
        let sweeper = JobSweeper(state: fixture.state, store: nil, stream: uniqueKey("s"), group: "g", logger: Logger(label: "test.sweeper"))
        let swept = try await sweeper.sweep(jobID: job.id)
        guard case .ended = swept else { throw TestFailure("the sweeper did not end the job: \(swept)") }
        #expect(try await fixture.state.record(jobID: job.id)?.status == .failed)
        #expect(try await fixture.redis.send("HEXISTS", fixture.state.settlementsKey, "r-" + job.id).int == 1)
    }

    @Test("a run whose task is cancelled (its worker lost the job, or is draining) leaves no trace: no complete, nothing billed, still running")
    func lostJobLeavesNoTrace() async throws {
        let fixture = try HandlerFixture()
        defer { fixture.redis.shutdown() }
        let handler = try fixture.handler(ScriptedGenerator(words: (0..<200).map { "w\($0)" }, pace: .milliseconds(20)))
        let (job, record) = try await fixture.job("long one")
        let run = Task { try await handler.run(job) }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID).filter({ $0.type == "chunk" }).count < 3, clock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        run.cancel()
        await #expect(throws: CancellationError.self) { try await run.value }
        let stored = try await fixture.events.read(sessionID: fixture.session.id, after: record.startEventID)
        #expect(!stored.contains { $0.type == "complete" || $0.type == "error" })
        #expect(fixture.ledger.settled.isEmpty)
        #expect(!fixture.store.stored.contains { $0.role == .assistant })
        #expect(try await fixture.state.record(jobID: job.id)?.status == .running)
    }
}

import ChatCore
import Foundation
import Logging
import Testing

@testable import ChatState
@testable import Queue

/// Jobs left half-way (a process died, an answer was lost) against redis-server: the sweeper ends each once,
/// in one consistent state.
@Suite("The job sweeper against redis-server", .timeLimit(.minutes(1)))
struct JobSweeperTests {
    struct Fixture {
        let redis: RedisClient
        let cache: SessionCache
        let state: GenerationState
        let events: SessionEvents
        let store = MemorySessionStore()
        let session = GenerationStateTests.session()
        let stream = uniqueKey("sweep-jobs")

        /// Deadlines of zero: every open job is due at once.
        init() throws {
            redis = try testRedisClient()
            cache = SessionCache(redis: redis)
            state = GenerationState(
                redis: redis, cache: cache, enqueueGrace: .zero, queueTimeout: .zero, lease: .zero, settlementsKey: uniqueKey("settlements"),
                openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns")
            )
            events = SessionEvents(redis: redis)
            store.add(session)
        }

        var sweeper: JobSweeper {
            JobSweeper(state: state, store: store, stream: stream, group: "chat-workers", logger: Logger(label: "test.sweeper"))
        }

        /// A job begun as chat-api begins one, with a reservation.
        func begin(_ message: String = "hello") async throws -> (record: JobRecord, reservationID: String, messageID: String) {
            try await cache.created(session)
            let reservationID = UUID().uuidString
            let messageID = ObjectIDs.next()
            guard case .started(let record, _) = try await state.begin(
                jobID: UUID().uuidString, sessionID: session.id, userID: session.userId, requestedModel: nil, defaultModel: "m", message: message,
                messageID: messageID, reservationID: reservationID
            ) else { throw TestFailure("not started") }
            return (record, reservationID, messageID)
        }

        func enqueue(_ jobID: String) async throws -> String? {
            try await redis.xgroupCreate(stream, group: "chat-workers")
            return try await state.enqueue(jobID: jobID, stream: stream, fields: [("jobId", jobID), ("payload", "{}")])
        }

        /// Sweeps the job (a process's sweeper may have got there first: the end is the same either way) and
        /// returns the code of its `error` event.
        func sweptError(_ record: JobRecord) async throws -> String? {
            _ = try await sweeper.sweep(jobID: record.jobID)
            let stored = try await events.read(sessionID: session.id, after: record.startEventID).filter { $0.jobID == record.jobID }
            #expect(stored.map(\.type).last == "error")
            guard case .error(let error)? = try ChatEvent.decode(type: .error, data: stored.last?.data ?? "") else { return nil }
            return error.code
        }

        func parked(_ reservationID: String) async throws -> PendingSettlement? {
            guard let json = try await redis.send("HGET", state.settlementsKey, reservationID).string else { return nil }
            return try JSONDecoder().decode(PendingSettlement.self, from: Data(json.utf8))
        }
    }

    @Test("a job begun and never enqueued (chat-api died between the claim and the enqueue) is ended: error, session free, refund parked, message kept")
    func neverEnqueued() async throws {
        let fixture = try Fixture()
        defer { fixture.redis.shutdown() }
        let (record, reservationID, messageID) = try await fixture.begin("lost on the way")
        #expect(try await fixture.sweptError(record) == "NOT_ENQUEUED")
        let ended = try #require(try await fixture.state.record(jobID: record.jobID))
        #expect(ended.status == .failed)
        #expect((try await fixture.redis.send("PTTL", GenerationState.jobKey(record.jobID)).int ?? -1) > 0)
        #expect(try await fixture.state.activeJob(sessionID: fixture.session.id) == nil)
        #expect(try await fixture.parked(reservationID) == PendingSettlement(
            reservationID: reservationID, userID: fixture.session.userId, modelID: "m", inputTokens: 0, outputTokens: 0, success: false,
            sessionID: fixture.session.id
        ))
        #expect(fixture.store.stored.map(\.id) == [messageID])
        #expect(fixture.store.stored.map(\.content) == ["lost on the way"])
        // A late enqueue (the request that stalled) is refused, and a second sweep changes nothing.
        #expect(try await fixture.enqueue(record.jobID) == nil)
        #expect(try await fixture.sweeper.sweep(jobID: record.jobID) == .notDue)
        #expect(try await fixture.redis.xlen(fixture.stream) == 0)
    }

    @Test("a job enqueued that no worker starts within the queue timeout is ended, and its entry leaves the queue")
    func noWorker() async throws {
        let fixture = try Fixture()
        defer { fixture.redis.shutdown() }
        let (record, reservationID, _) = try await fixture.begin()
        let entry = try #require(try await fixture.enqueue(record.jobID))
        // The enqueue is idempotent: a retry after a lost answer finds the same entry.
        #expect(try await fixture.enqueue(record.jobID) == entry)
        #expect(try await fixture.redis.xlen(fixture.stream) == 1)
        // Enqueued: chat-api may no longer abandon it (a worker may run it).
        #expect(try await fixture.state.abandonBeforeEnqueue(jobID: record.jobID, sessionID: fixture.session.id) == false)
        #expect(try await fixture.sweptError(record) == "NO_WORKER")
        #expect(try await fixture.redis.xlen(fixture.stream) == 0)
        #expect(try await fixture.state.status(jobID: record.jobID) == .failed)
        #expect(try await fixture.parked(reservationID)?.outputTokens == 0)
        // A worker that reads the entry late finds the job ended.
        let model = ChatEvent.model(ModelEvent(jobId: record.jobID, modelId: "m", attempt: 1))
        #expect(try await fixture.state.startRun(jobID: record.jobID, sessionID: fixture.session.id, attempt: 1, reset: nil, model: model) == .ended)
    }

    @Test("a running job whose entry left the queue without an end (dead-lettered by a process that died) ends with the committed outcome's counts")
    func lostAfterDeadLetter() async throws {
        let fixture = try Fixture()
        defer { fixture.redis.shutdown() }
        let (record, reservationID, _) = try await fixture.begin()
        let entry = try #require(try await fixture.enqueue(record.jobID))
        let model = ChatEvent.model(ModelEvent(jobId: record.jobID, modelId: "m", attempt: 1))
        guard case .started = try await fixture.state.startRun(jobID: record.jobID, sessionID: fixture.session.id, attempt: 1, reset: nil, model: model)
        else { throw TestFailure("not started") }
        let outcome = JobOutcome(attempt: 1, status: .failed, text: "partial", stopReason: "error", inputTokens: 9, outputTokens: 4, replyMessageID: nil)
        #expect(try await fixture.state.commit(jobID: record.jobID, outcome) == .committed)
        try await fixture.redis.xdel(fixture.stream, ids: [entry])
        #expect(try await fixture.sweptError(record) == "JOB_LOST")
        #expect(try await fixture.parked(reservationID).map { [$0.inputTokens, $0.outputTokens] } == [9, 4])
        #expect(try await fixture.state.activeJob(sessionID: fixture.session.id) == nil)
        // The stale worker's end is refused: the sweeper's end took a later attempt.
        let complete = ChatEvent.complete(
            CompleteEvent(jobId: record.jobID, messageId: nil, content: "x", modelId: "m", stopReason: "end_turn", inputTokens: 1, outputTokens: 1,
                creditsCharged: 1, settlementPending: false, latencyMs: 1, spans: nil)
        )
        #expect(try await fixture.state.end(jobID: record.jobID, sessionID: fixture.session.id, attempt: 1, JobEnding(status: .completed, event: complete)) == .alreadyEnded)
    }

    @Test("a job whose worker renews it is not due; a begin retried after a lost answer answers as the first did")
    func renewedAndRetried() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let cache = SessionCache(redis: redis)
        let state = GenerationState(redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"))
        let session = GenerationStateTests.session()
        try await cache.created(session)
        let jobID = UUID().uuidString
        func begin() async throws -> BeginOutcome {
            try await state.begin(
                jobID: jobID, sessionID: session.id, userID: session.userId, requestedModel: nil, defaultModel: "m", message: "q",
                messageID: ObjectIDs.next(), reservationID: "r"
            )
        }
        guard case .started(let record, _) = try await begin() else { throw TestFailure("not started") }
        guard case .started(let again, _) = try await begin() else { throw TestFailure("a retried begin was refused") }
        #expect(again.startEventID == record.startEventID)
        let sweeper = JobSweeper(state: state, store: nil, stream: uniqueKey("s"), group: "g", logger: Logger(label: "test"))
        #expect(try await sweeper.sweep(jobID: jobID) == .notDue)
        let model = ChatEvent.model(ModelEvent(jobId: jobID, modelId: "m", attempt: 1))
        _ = try await state.startRun(jobID: jobID, sessionID: session.id, attempt: 1, reset: nil, model: model)
        #expect(try await state.renewLocks([(jobID: jobID, sessionID: session.id, attempt: 1)]).isEmpty)
        #expect(try await sweeper.sweep(jobID: jobID) == .notDue)
        #expect(try await state.status(jobID: jobID) == .running)
    }
}

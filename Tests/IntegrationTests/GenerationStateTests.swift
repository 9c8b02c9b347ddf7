import ChatCore
import Foundation
import Testing

@testable import API
@testable import ChatState
@testable import Queue

@Suite("Generation state and the session cache against redis-server", .timeLimit(.minutes(1)))
struct GenerationStateTests {
    static func session(_ user: String = "alice", model: String? = nil) -> ChatSession {
        ChatSession(id: ObjectIDs.next(), userId: user, title: "t", modelId: model, createdAt: Date(), updatedAt: Date(), messageCount: 0)
    }

    func begin(_ state: GenerationState, _ session: ChatSession, user: String = "alice", model: String? = nil) async throws -> BeginOutcome {
        try await state.begin(
            jobID: UUID().uuidString, sessionID: session.id, userID: user, requestedModel: model, defaultModel: "default-model",
            message: "hello", messageID: ObjectIDs.next()
        )
    }

    @Test("starting a generation checks the owner from the cache: unknown, someone else's, deleted, busy, started")
    func beginOutcomes() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let cache = SessionCache(redis: redis)
        let state = GenerationState(redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"))
        let session = Self.session(model: "session-model")
        #expect(try await begin(state, session) == .unknownSession)
        try await cache.created(session)
        #expect(try await begin(state, session, user: "mallory") == .notFound)
        guard case .started(let record, let summary) = try await begin(state, session) else {
            Issue.record("expected the generation to start")
            return
        }
        #expect(summary.modelID == "session-model")
        #expect(record.startEventID == "0-0")
        #expect(try await begin(state, session) == .busy)
        let pending = try await state.pendingMessage(jobID: record.jobID)
        #expect(pending?.text == "hello")
        try await state.abandonBeforeEnqueue(jobID: record.jobID, sessionID: session.id)
        guard case .started(_, let requested) = try await begin(state, session, model: "asked-for") else {
            Issue.record("expected the session to be free again")
            return
        }
        #expect(requested.modelID == "asked-for")
        let other = Self.session()
        try await cache.created(other)
        try await cache.deleted(sessionID: other.id)
        #expect(try await begin(state, other) == .notFound)
        // A late fill (a reader that saw the session before it was deleted) does not bring it back.
        try await cache.fill(other)
        #expect(try await begin(state, other) == .notFound)
    }

    @Test("a cached history is read in order in one pass; an item that is not exactly one turn is skipped, the rest kept")
    func historyTurnsDecode() throws {
        let turns = [
            HistoryTurn(jobID: "j1", role: .user, text: "Say \"hi\",\nthen [stop] and {} \u{1F600} é"),
            HistoryTurn(jobID: "j1", role: .assistant, text: "hi],[{"),
            HistoryTurn(jobID: "j2", role: .user, text: ""),
        ]
        func reply(_ items: [String?]) -> RedisValue {
            .array(items.map { $0.map { RedisValue.bulkString(Array($0.utf8)) } ?? .null })
        }
        #expect(SessionCache.turns(reply(turns.map { $0.encoded() })) == turns)
        #expect(SessionCache.turns(reply([])) == [])
        #expect(SessionCache.turns(.null) == [])
        let two = turns[0].encoded() + "," + turns[1].encoded()
        for odd in ["{not json", two, "", "]", "[" + turns[0].encoded() + "]", #"{"j":"x","r":"wizard","t":"?"}"#] {
            let items: [String?] = [turns[0].encoded(), odd, turns[1].encoded(), nil, turns[2].encoded()]
            #expect(SessionCache.turns(reply(items)) == turns, "with \(odd)")
        }
    }

    @Test("a claimed stream slot is taken with the session, only when the job starts; at either cap nothing changes; a retried start keeps its slot")
    func beginTakesStreamSlot() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let cache = SessionCache(redis: redis)
        let state = GenerationState(
            redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"),
            maxJobsPerUser: 3
        )
        var slots = UserSlots(redis: redis, lease: .seconds(30))
        slots.keyPrefix = uniqueKey("slots") + ":"
        let user = "slotter-\(UUID().uuidString.prefix(8))"
        let key = slots.key(.streams, userID: user)
        func begin(_ session: ChatSession, slot: String, jobID: String = UUID().uuidString) async throws -> BeginOutcome {
            try await state.begin(
                jobID: jobID, sessionID: session.id, userID: user, requestedModel: nil, defaultModel: "default-model",
                message: "hello", messageID: ObjectIDs.next(), streamSlot: slots.claim(.streams, userID: user, id: slot, cap: 2)
            )
        }
        func held() async throws -> [String] { (try await redis.send("ZRANGE", key, "0", "-1").array ?? []).compactMap(\.string).sorted() }
        func unfinished() async throws -> Int { try await redis.send("ZCARD", GenerationState.userJobsKey(user)).int ?? -1 }
        let sessions = (0..<4).map { _ in Self.session(user) }
        for session in sessions { try await cache.created(session) }
        // Refused before the slot's turn (someone else's session, a session busy): the slot is not taken.
        #expect(try await state.begin(
            jobID: UUID().uuidString, sessionID: sessions[0].id, userID: "mallory", requestedModel: nil, defaultModel: "m", message: "x",
            messageID: ObjectIDs.next(), streamSlot: slots.claim(.streams, userID: "mallory", id: "m1", cap: 2)
        ) == .notFound)
        #expect(try await redis.send("EXISTS", slots.key(.streams, userID: "mallory")).int == 0)
        guard case .started(let first, _) = try await begin(sessions[0], slot: "a") else {
            Issue.record("expected the first start")
            return
        }
        #expect(try await begin(sessions[0], slot: "b") == .busy)
        #expect(try await held() == ["a"])
        let ttl = try await redis.send("PTTL", key).int ?? 0
        #expect(ttl > 20_000 && ttl <= 30_000)
        let secondJob = UUID().uuidString
        guard case .started = try await begin(sessions[1], slot: "b", jobID: secondJob) else {
            Issue.record("expected the second start")
            return
        }
        // The same start again (its first answer lost) answers as the first did, though the cap is reached now.
        guard case .started(let again, _) = try await begin(sessions[1], slot: "b", jobID: secondJob) else {
            Issue.record("expected a retried start to answer as the first")
            return
        }
        #expect(again.jobID == secondJob)
        #expect(try await held() == ["a", "b"])
        // At the cap on streams: refused with the session left unclaimed, no job recorded or counted.
        let jobsBefore = try await redis.send("ZCARD", state.openJobsKey).int
        #expect(try await unfinished() == 2)
        #expect(try await begin(sessions[2], slot: "c") == .tooManyStreams)
        #expect(try await held() == ["a", "b"])
        #expect(try await state.activeJob(sessionID: sessions[2].id) == nil)
        #expect(try await redis.send("ZCARD", state.openJobsKey).int == jobsBefore)
        #expect(try await unfinished() == 2)
        // A slot given back (its stream ended) makes room.
        try await slots.release(.streams, userID: user, id: "a")
        guard case .started = try await begin(sessions[2], slot: "c") else {
            Issue.record("expected a start once a slot was given back")
            return
        }
        // A lapsed lease makes room for a stream, but three replies are unfinished: refused, no slot taken.
        try await redis.send("ZADD", key, "1", "b")
        #expect(try await begin(sessions[3], slot: "d") == .tooManyJobs)
        #expect(try await held() == ["c"])
        #expect(try await state.activeJob(sessionID: sessions[3].id) == nil)
        // One of them over: the start goes through and takes its slot.
        try await state.abandonBeforeEnqueue(jobID: first.jobID, sessionID: sessions[0].id)
        guard case .started = try await begin(sessions[3], slot: "d") else {
            Issue.record("expected a start once a reply was over")
            return
        }
        #expect(try await held() == ["c", "d"])
    }

    @Test("a run starts with its events and the cached history; its end adds its turns; a failed end forgets the history")
    func runLifecycle() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let cache = SessionCache(redis: redis, maxHistoryBytes: 400)
        let state = GenerationState(redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"))
        let events = SessionEvents(redis: redis)
        let session = Self.session()
        try await cache.created(session)

        func run(_ text: String, reply: String, status: JobStatus = .completed) async throws -> [HistoryTurn]? {
            guard case .started(let record, _) = try await begin(state, session) else { throw TestFailure("not started") }
            let start = try await state.startRun(
                jobID: record.jobID, sessionID: session.id, attempt: 1, reset: nil, model: .model(ModelEvent(jobId: record.jobID, modelId: "m", attempt: 1))
            )
            guard case .started(let history, true, false) = start else { throw TestFailure("run not started: \(start)") }
            let event: ChatEvent = status == .failed
                ? .error(ErrorEvent(jobId: record.jobID, code: "X", message: "failed"))
                : .complete(
                    CompleteEvent(
                        jobId: record.jobID, messageId: nil, content: reply, modelId: "m", stopReason: "end_turn", inputTokens: 1, outputTokens: 1,
                        creditsCharged: 1, settlementPending: false, latencyMs: 1, spans: nil
                    )
                )
            try await state.end(
                jobID: record.jobID, sessionID: session.id, attempt: 1,
                JobEnding(
                    status: status, event: event,
                    turns: [HistoryTurn(jobID: record.jobID, role: .user, text: text), HistoryTurn(jobID: record.jobID, role: .assistant, text: reply)],
                    storedMessages: 2, storedBytes: text.utf8.count + reply.utf8.count
                )
            )
            #expect(try await state.record(jobID: record.jobID)?.status == status)
            #expect(try await state.activeJob(sessionID: session.id) == nil)
            let stored = try await events.read(sessionID: session.id, after: record.startEventID)
            #expect(stored.map(\.type) == ["model", status == .failed ? "error" : "complete"])
            return history
        }

        #expect(try await run("one", reply: "first") == [])
        #expect(try await run("two", reply: "second")?.map(\.text) == ["one", "first"])
        #expect(try await run("three", reply: "third")?.map(\.text) == ["one", "first", "two", "second"])
        // Past the cap the oldest turns go first.
        let long = String(repeating: "x", count: 300)
        _ = try await run("four", reply: long)
        let capped = try #require(try await cache.history(sessionID: session.id))
        #expect(capped.last?.text == long)
        #expect(capped.map { $0.encoded().utf8.count }.reduce(0, +) <= 400)
        // A failed job forgets the history: the next run reads the database instead.
        _ = try await run("five", reply: "", status: .failed)
        #expect(try await cache.history(sessionID: session.id) == nil)
        let messages = [
            ChatMessage(id: ObjectIDs.next(), sessionId: session.id, jobId: "a", role: .user, content: "stored", modelId: nil, status: .complete, inputTokens: nil, outputTokens: nil, createdAt: Date()),
            ChatMessage(id: ObjectIDs.next(), sessionId: session.id, jobId: "a", role: .assistant, content: "cut", modelId: nil, status: .cancelled, inputTokens: nil, outputTokens: nil, createdAt: Date()),
        ]
        try await cache.fillHistory(sessionID: session.id, messages: messages)
        #expect(try await cache.history(sessionID: session.id)?.map(\.text) == ["stored"])
    }

    @Test("a run of a job that already ended does nothing; a cancellation asked before the run is seen at its start")
    func endedAndCancelled() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let cache = SessionCache(redis: redis)
        let state = GenerationState(redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"))
        let session = Self.session()
        try await cache.created(session)
        guard case .started(let record, _) = try await begin(state, session) else { throw TestFailure("not started") }
        _ = try await state.cancelActive(sessionID: session.id)
        let model = ChatEvent.model(ModelEvent(jobId: record.jobID, modelId: "m", attempt: 1))
        let start = try await state.startRun(jobID: record.jobID, sessionID: session.id, attempt: 1, reset: nil, model: model)
        #expect(start == .started(history: [], sessionKnown: true, cancelRequested: true))
        try await state.end(jobID: record.jobID, sessionID: session.id, attempt: 1, JobEnding(status: .failed, event: .error(ErrorEvent(jobId: record.jobID, code: "X", message: "x"))))
        #expect(try await state.startRun(jobID: record.jobID, sessionID: session.id, attempt: 2, reset: nil, model: model) == .ended)
    }
}

extension GenerationStateTests {
    @Test("an ended job changes nothing more: a second end, a late renewal of its lock; a begun job's record expires even if never run")
    func endIsFinal() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let cache = SessionCache(redis: redis)
        let state = GenerationState(redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"))
        let events = SessionEvents(redis: redis)
        let session = Self.session()
        try await cache.created(session)
        guard case .started(let record, _) = try await begin(state, session) else { throw TestFailure("not started") }
        #expect((try await redis.send("PTTL", GenerationState.jobKey(record.jobID)).int ?? -1) > 0)
        _ = try await state.startRun(
            jobID: record.jobID, sessionID: session.id, attempt: 1, reset: nil, model: .model(ModelEvent(jobId: record.jobID, modelId: "m", attempt: 1))
        )
        let complete = ChatEvent.complete(
            CompleteEvent(
                jobId: record.jobID, messageId: nil, content: "x", modelId: "m", stopReason: "end_turn", inputTokens: 1, outputTokens: 1,
                creditsCharged: 1, settlementPending: false, latencyMs: 1, spans: nil
            )
        )
        let turns = [HistoryTurn(jobID: record.jobID, role: .user, text: "q"), HistoryTurn(jobID: record.jobID, role: .assistant, text: "x")]
        #expect(try await state.end(jobID: record.jobID, sessionID: session.id, attempt: 1, JobEnding(status: .completed, event: complete, turns: turns, storedMessages: 2, storedBytes: 2)) == .ended)
        // A run that lost the job ends it again, and a dead letter arrives late: neither counts.
        #expect(try await state.end(jobID: record.jobID, sessionID: session.id, attempt: 1, JobEnding(status: .completed, event: complete, turns: turns, storedMessages: 2, storedBytes: 2)) == .alreadyEnded)
        #expect(try await state.end(jobID: record.jobID, sessionID: session.id, attempt: 4, JobEnding(status: .failed, event: .error(ErrorEvent(jobId: record.jobID, code: "X", message: "x")))) == .alreadyEnded)
        #expect(try await events.read(sessionID: session.id, after: record.startEventID).map(\.type) == ["model", "complete"])
        #expect(try await state.status(jobID: record.jobID) == .completed)
        #expect(try await cache.history(sessionID: session.id)?.count == 2)
        // The lock renewal loop took its snapshot before the end: renewing now must not lock the session again,
        // and it tells that the run is over.
        #expect(try await state.renewLocks([(jobID: record.jobID, sessionID: session.id, attempt: 1)]) == [record.jobID])
        #expect(try await state.activeJob(sessionID: session.id) == nil)
    }

    @Test("a session whose lock lapsed leaves the active list when its job ends, or when the list is read: it is never listed for ever")
    func lapsedLockLeavesActiveList() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let cache = SessionCache(redis: redis)
        let state = GenerationState(redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"))
        func listed(_ session: ChatSession) async throws -> Bool {
            try await redis.send("SISMEMBER", GenerationState.activeSessionsKey, session.id).int == 1
        }
        // A job whose lock lapsed before it ended (its worker stalled past the lock's lifetime).
        let session = Self.session()
        try await cache.created(session)
        guard case .started(let record, _) = try await begin(state, session) else { throw TestFailure("not started") }
        #expect(try await listed(session))
        _ = try await redis.send("DEL", GenerationState.lockKey(session.id))
        let failed = JobEnding(status: .failed, event: .error(ErrorEvent(jobId: record.jobID, code: "X", message: "x")))
        #expect(try await state.end(jobID: record.jobID, sessionID: session.id, attempt: 0, failed) == .ended)
        #expect(try await !listed(session))
        // A job whose record was lost: nothing ends it, and reading the list forgets the session.
        let other = Self.session()
        try await cache.created(other)
        guard case .started = try await begin(state, other) else { throw TestFailure("not started") }
        try await state.forgetIfInactive(sessionID: other.id)
        #expect(try await listed(other), "a session still locked was forgotten")
        _ = try await redis.send("DEL", GenerationState.lockKey(other.id))
        try await state.forgetIfInactive(sessionID: other.id)
        #expect(try await !listed(other))
    }

    @Test("once a later attempt started, every effect of the earlier one is refused: start, publish, commit, end, lock renewal")
    func staleAttemptIsFenced() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let cache = SessionCache(redis: redis)
        let state = GenerationState(redis: redis, cache: cache, lockTTL: .seconds(60), settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"))
        let events = SessionEvents(redis: redis)
        let session = Self.session()
        try await cache.created(session)
        guard case .started(let record, _) = try await begin(state, session) else { throw TestFailure("not started") }
        let job = record.jobID
        func model(_ attempt: Int) -> ChatEvent { .model(ModelEvent(jobId: job, modelId: "m", attempt: attempt)) }
        guard case .started = try await state.startRun(jobID: job, sessionID: session.id, attempt: 1, reset: nil, model: model(1)) else {
            throw TestFailure("attempt 1 did not start")
        }
        var first = state.chunkPublisher(jobID: job, sessionID: session.id, attempt: 1)
        try await first.publish(ChunkEvent(content: "old ", index: 0), wait: true)
        // Attempt 2 takes over (the first stalled past the visibility timeout).
        guard case .started = try await state.startRun(jobID: job, sessionID: session.id, attempt: 2, reset: .reset(ResetEvent(jobId: job, attempt: 2)), model: model(2))
        else { throw TestFailure("attempt 2 did not start") }
        try await state.publish(jobID: job, sessionID: session.id, attempt: 2, event: .chunk(ChunkEvent(content: "new", index: 0)))
        let before = try await events.read(sessionID: session.id, after: record.startEventID)

        // The stalled attempt comes back.
        #expect(try await state.startRun(jobID: job, sessionID: session.id, attempt: 1, reset: nil, model: model(1)) == .stale)
        #expect(try await state.startRun(jobID: job, sessionID: session.id, attempt: 2, reset: nil, model: model(2)) == .stale)
        await #expect(throws: JobFenced.self) { try await state.publish(jobID: job, sessionID: session.id, attempt: 1, event: .chunk(ChunkEvent(content: "x", index: 1))) }
        try await first.publish(ChunkEvent(content: "pipelined", index: 1))
        await #expect(throws: JobFenced.self) { try await first.flush() }
        let stale = JobOutcome(attempt: 1, status: .completed, text: "old", stopReason: "end_turn", inputTokens: 1, outputTokens: 1, replyMessageID: ObjectIDs.next())
        #expect(try await state.commit(jobID: job, stale) == .refused)
        #expect(try await state.outcome(jobID: job) == nil)
        let complete = ChatEvent.complete(
            CompleteEvent(jobId: job, messageId: nil, content: "old", modelId: "m", stopReason: "end_turn", inputTokens: 1, outputTokens: 1,
                creditsCharged: 1, settlementPending: false, latencyMs: 1, spans: nil)
        )
        #expect(try await state.end(jobID: job, sessionID: session.id, attempt: 1, JobEnding(status: .completed, event: complete)) == .stale)
        #expect(try await state.renewLocks([(jobID: job, sessionID: session.id, attempt: 1)]) == [job])

        // Nothing of it landed: the events, the record and the lock are attempt 2's.
        #expect(try await events.read(sessionID: session.id, after: record.startEventID) == before)
        #expect(before.map(\.type) == ["model", "chunk", "reset", "model", "chunk"])
        #expect(before.map(\.attempt) == [1, 1, 2, 2, 2])
        let current = try #require(try await state.record(jobID: job))
        #expect(current.status == .running && current.attempt == 2)
        #expect(try await state.activeJob(sessionID: session.id) == job)
        // The current attempt's effects go through.
        #expect(try await state.renewLocks([(jobID: job, sessionID: session.id, attempt: 2)]).isEmpty)
        let fresh = JobOutcome(attempt: 2, status: .completed, text: "new", stopReason: "end_turn", inputTokens: 1, outputTokens: 1, replyMessageID: ObjectIDs.next())
        #expect(try await state.commit(jobID: job, fresh) == .committed)
        #expect(try await state.commit(jobID: job, fresh) == .alreadyCommitted)
        #expect(try await state.outcome(jobID: job) == fresh)
        #expect(try await state.end(jobID: job, sessionID: session.id, attempt: 2, JobEnding(status: .completed, event: complete)) == .ended)
        #expect(try await state.activeJob(sessionID: session.id) == nil)
    }

    @Test("an attempt after a committed outcome finishes from it: no events, the outcome back; a job without a record is gone")
    func committedOutcomeAndGoneRecord() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let cache = SessionCache(redis: redis)
        let state = GenerationState(redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"))
        let events = SessionEvents(redis: redis)
        let session = Self.session()
        try await cache.created(session)
        guard case .started(let record, _) = try await begin(state, session) else { throw TestFailure("not started") }
        let job = record.jobID
        let model = ChatEvent.model(ModelEvent(jobId: job, modelId: "m", attempt: 1))
        _ = try await state.startRun(jobID: job, sessionID: session.id, attempt: 1, reset: nil, model: model)
        let outcome = JobOutcome(attempt: 1, status: .completed, text: "kept", stopReason: "end_turn", inputTokens: 3, outputTokens: 1, replyMessageID: ObjectIDs.next())
        #expect(try await state.commit(jobID: job, outcome) == .committed)
        let seen = try await events.read(sessionID: session.id, after: record.startEventID).count
        // The worker died after the commit; attempt 2 finds it.
        #expect(try await state.startRun(jobID: job, sessionID: session.id, attempt: 2, reset: .reset(ResetEvent(jobId: job, attempt: 2)), model: model) == .committed(outcome))
        #expect(try await events.read(sessionID: session.id, after: record.startEventID).count == seen)
        #expect(try await state.record(jobID: job)?.attempt == 2)

        // Redis lost the record (a flush): the run cannot start, and nothing is written back.
        try await redis.send("DEL", GenerationState.jobKey(job))
        #expect(try await state.startRun(jobID: job, sessionID: session.id, attempt: 3, reset: nil, model: model) == .gone)
        #expect(try await redis.send("EXISTS", GenerationState.jobKey(job)).int == 0)
    }

    @Test("a cancel reaches the job that holds the session now, in one step: never the one that ended before it")
    func cancelReachesTheCurrentJob() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let cache = SessionCache(redis: redis)
        let state = GenerationState(redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"))
        let session = Self.session()
        try await cache.created(session)
        #expect(try await state.cancelActive(sessionID: session.id) == nil)
        guard case .started(let first, _) = try await begin(state, session) else { throw TestFailure("not started") }
        func model(_ job: String) -> ChatEvent { .model(ModelEvent(jobId: job, modelId: "m", attempt: 1)) }
        _ = try await state.startRun(jobID: first.jobID, sessionID: session.id, attempt: 1, reset: nil, model: model(first.jobID))
        try await state.end(jobID: first.jobID, sessionID: session.id, attempt: 1, JobEnding(status: .failed, event: .error(ErrorEvent(jobId: first.jobID, code: "X", message: "x"))))
        guard case .started(let second, _) = try await begin(state, session) else { throw TestFailure("not started") }
        #expect(try await state.cancelActive(sessionID: session.id) == second.jobID)
        #expect(try await redis.send("EXISTS", GenerationState.cancelKey(first.jobID)).int == 0)
        let start = try await state.startRun(jobID: second.jobID, sessionID: session.id, attempt: 1, reset: nil, model: model(second.jobID))
        guard case .started(_, _, let cancelRequested) = start else { throw TestFailure("not started: \(start)") }
        #expect(cancelRequested)
        let requests = try await redis.send("XREVRANGE", GenerationState.cancelsKey, "+", "-", "COUNT", "200").array?.compactMap {
            try? RedisClient.streamEntry($0)
        }.compactMap { $0 } ?? []
        #expect(requests.contains { $0.fields["jobId"] == second.jobID } && !requests.contains { $0.fields["jobId"] == first.jobID })
    }

    @Test("a history flagged whole whose list is gone is read again from the database")
    func vanishedHistory() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let cache = SessionCache(redis: redis)
        let state = GenerationState(redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns"))
        let session = Self.session()
        try await cache.created(session)
        let messages = [
            ChatMessage(id: ObjectIDs.next(), sessionId: session.id, jobId: "a", role: .user, content: "kept", modelId: nil, status: .complete, inputTokens: nil, outputTokens: nil, createdAt: Date())
        ]
        try await redis.send("HSET", SessionCache.metaKey(session.id), "history", "0")
        try await cache.fillHistory(sessionID: session.id, messages: messages)
        try await redis.send("DEL", SessionCache.historyKey(session.id))
        guard case .started(let record, _) = try await begin(state, session) else { throw TestFailure("not started") }
        let start = try await state.startRun(
            jobID: record.jobID, sessionID: session.id, attempt: 1, reset: nil, model: .model(ModelEvent(jobId: record.jobID, modelId: "m", attempt: 1))
        )
        #expect(start == .started(history: nil, sessionKnown: true, cancelRequested: false))
    }
}

/// A failure a test throws to stop with a message.
struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Unique ObjectId-shaped ids for tests.
enum ObjectIDs {
    static func next() -> String {
        (0..<24).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
    }
}

@Suite("Last-Event-ID values")
struct LastEventIDTests {
    @Test("only ASCII digits that fit an entry id part are taken", arguments: [
        ("1-0", true), ("1700000000000-12", true), ("18446744073709551615-0", true), ("18446744073709551616-0", false), ("½-1", false),
        ("٣-1", false), ("+1-0", false), ("1-", false), ("-1", false), ("1-2-3", false), ("", false), ("a-b", false),
    ])
    func entryIDs(text: String, valid: Bool) {
        #expect(GenerationController.isEntryID(text) == valid)
    }
}

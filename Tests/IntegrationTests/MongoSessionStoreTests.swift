@preconcurrency import CMongoc
import ChatCore
import Foundation
import Logging
import Synchronization
import Testing

@testable import ChatStore

/// `MongoSessionStore` against a real SecantusDB; each test works in a database of its own.
@Suite struct MongoSessionStoreTests {
    // MARK: Sessions

    @Test func createAndListPaginatesNewestFirst() async throws {
        try await withStore { store in
            try await store.prepare()  // a second time, as every process start does: indexes exist already
            var created: [ChatSession] = []
            for index in 1...5 {
                created.append(try await store.createSession(userId: "alice", title: "Session \(index)", modelId: "model-a"))
            }
            _ = try await store.createSession(userId: "bob", title: "Not Alice's", modelId: nil)

            let pages = [
                try await store.listSessions(userId: "alice", page: 1, limit: 2),
                try await store.listSessions(userId: "alice", page: 2, limit: 2),
                try await store.listSessions(userId: "alice", page: 3, limit: 2),
            ]
            #expect(pages.map(\.sessions.count) == [2, 2, 1])
            #expect(pages.map(\.total) == [5, 5, 5])
            #expect(pages.flatMap(\.sessions) == created.reversed())
            let beyond = try await store.listSessions(userId: "alice", page: 4, limit: 2)
            #expect(beyond.sessions.isEmpty && beyond.total == 5)

            let first = try #require(created.first)
            #expect(SessionID.isValid(first.id) && first.id == first.id.lowercased())
            #expect(first.messageCount == 0 && first.createdAt == first.updatedAt)
        }
    }

    @Test func sessionsAreScopedToTheirOwner() async throws {
        try await withStore { store in
            let session = try await store.createSession(userId: "alice", title: "Private", modelId: nil)

            #expect(try await store.session(id: session.id, userId: "alice") == session)
            #expect(try await store.session(id: session.id, userId: "mallory") == nil)
            #expect(try await store.session(id: session.id) == session)
            #expect(try await store.deleteSession(id: session.id, userId: "mallory") == false)
            #expect(try await store.session(id: session.id) == session)
            #expect(try await store.listSessions(userId: "mallory", page: 1, limit: 10) == SessionPage(sessions: [], total: 0))
        }
    }

    @Test func malformedIdsFindNothingWithoutAskingTheDatabase() async throws {
        // Nothing listens on this port: any database call would fail, so a nil proves there was none.
        let store = try MongoSessionStore(
            configuration: MongoConfiguration(uri: "mongodb://127.0.0.1:\(TestEnvironment.freePort())/chat", timeout: .seconds(1))
        )
        for id in ["", "abc", "zzzzzzzzzzzzzzzzzzzzzzzz", "0123456789abcdef0123456", "0123456789abcdef012345678", "0123456789abcdef01234５"] {
            #expect(try await store.session(id: id) == nil)
            #expect(try await store.session(id: id, userId: "alice") == nil)
            #expect(try await store.deleteSession(id: id, userId: "alice") == false)
            #expect(try await store.messages(sessionId: id).isEmpty)
        }
        let error = await #expect(throws: ChatError.self) {
            try await store.session(id: "0123456789abcdef01234567")
        }
        #expect(error?.code == "DATABASE_UNAVAILABLE")
        try await store.shutdown()
    }

    // MARK: Messages

    @Test func sessionComesWithItsMessagesOldestFirst() async throws {
        try await withStore { store in
            let session = try await store.createSession(userId: "alice", title: "Chat", modelId: "model-a")
            let question = try await store.appendMessage(NewMessage(sessionId: session.id, jobId: "job-1", role: .user, content: "Hello?"))
            let answer = try await store.appendMessage(
                NewMessage(
                    sessionId: session.id, jobId: "job-1", role: .assistant, content: "Hi!", modelId: "model-a",
                    status: .cancelled, inputTokens: 12, outputTokens: 3
                )
            )

            #expect(try await store.messages(sessionId: session.id) == [question, answer])
            #expect(answer.modelId == "model-a" && answer.status == .cancelled)
            #expect(answer.inputTokens == 12 && answer.outputTokens == 3 && question.inputTokens == nil)
            #expect(question.id != answer.id && question.sessionId == session.id)
            let reloaded = try #require(try await store.session(id: session.id, userId: "alice"))
            #expect(reloaded.messageCount == 2)
            #expect(reloaded.updatedAt == answer.createdAt && reloaded.createdAt == session.createdAt)
        }
    }

    @Test func deletingASessionDeletesItsMessages() async throws {
        try await withStore { store in
            let doomed = try await store.createSession(userId: "alice", title: "Doomed", modelId: nil)
            let kept = try await store.createSession(userId: "alice", title: "Kept", modelId: nil)
            for (index, session) in [doomed, kept, doomed].enumerated() {
                _ = try await store.appendMessage(NewMessage(sessionId: session.id, jobId: "job-\(index)", role: .user, content: "m\(index)"))
            }

            #expect(try await store.deleteSession(id: doomed.id, userId: "alice"))
            #expect(try await store.session(id: doomed.id) == nil)
            #expect(try await store.messages(sessionId: doomed.id).isEmpty)
            #expect(try await store.messages(sessionId: kept.id).map(\.content) == ["m1"])
            #expect(try await store.deleteSession(id: doomed.id, userId: "alice") == false)
        }
    }

    @Test func appendingTheSameJobAndRoleTwiceStoresOneMessage() async throws {
        try await withStore { store in
            let session = try await store.createSession(userId: "alice", title: "Retry", modelId: nil)
            let first = try await store.appendMessage(NewMessage(sessionId: session.id, jobId: "job-7", role: .assistant, content: "first run"))
            let again = try await store.appendMessage(NewMessage(sessionId: session.id, jobId: "job-7", role: .assistant, content: "re-run"))

            #expect(again == first)
            #expect(again.content == "first run")
            #expect(try await store.messages(sessionId: session.id) == [first])
            let afterRepeat = try #require(try await store.session(id: session.id))
            #expect(afterRepeat.messageCount == 1)
            #expect(afterRepeat.updatedAt == first.createdAt)

            // The same role of another job, and another role of the same job, are new messages.
            _ = try await store.appendMessage(NewMessage(sessionId: session.id, jobId: "job-7", role: .user, content: "q"))
            _ = try await store.appendMessage(NewMessage(sessionId: session.id, jobId: "job-8", role: .assistant, content: "a"))
            #expect(try await store.messages(sessionId: session.id).count == 3)
            #expect(try await store.session(id: session.id)?.messageCount == 3)
        }
    }

    @Test func concurrentAppendsOfOneJobAndRoleStoreOneMessage() async throws {
        // As many threads as racers, so the upserts really run at the same time.
        try await withStore(threadCount: 8) { store in
            let session = try await store.createSession(userId: "alice", title: "Race", modelId: nil)
            let rounds = 20
            for round in 0..<rounds {
                let ids = try await withThrowingTaskGroup(of: String.self) { group in
                    for attempt in 0..<8 {
                        group.addTask {
                            let message = NewMessage(sessionId: session.id, jobId: "job-\(round)", role: .assistant, content: "\(attempt)")
                            return try await store.appendMessage(message).id
                        }
                    }
                    return try await group.reduce(into: Set<String>()) { $0.insert($1) }
                }
                #expect(ids.count == 1)
            }
            #expect(try await store.messages(sessionId: session.id).count == rounds)
            #expect(try await store.session(id: session.id)?.messageCount == rounds)
        }
    }

    @Test func aTurnIsStoredInOneWriteAndARepeatReturnsWhatWasStoredFirst() async throws {
        try await withStore { store in
            let session = try await store.createSession(userId: "alice", title: "Turn", modelId: nil)
            let asked = Date(timeIntervalSince1970: 1_700_000_000)
            let question = NewMessage(sessionId: session.id, jobId: "job-1", role: .user, content: "Hello?", id: "0123456789abcdef0123abcd", createdAt: asked)
            let turn = try await store.appendMessages([
                question, NewMessage(sessionId: session.id, jobId: "job-1", role: .assistant, content: "Hi, héllo", inputTokens: 3, outputTokens: 4),
            ])

            #expect(turn.map(\.role) == [.user, .assistant])
            #expect(turn[0].id == "0123456789abcdef0123abcd" && turn[0].createdAt == asked)
            #expect(turn[1].inputTokens == 3 && turn[1].outputTokens == 4)
            #expect(try await store.messages(sessionId: session.id) == turn)
            let counted = try #require(try await store.session(id: session.id))
            #expect(counted.messageCount == 2)
            #expect(counted.contentBytes == "Hello?".utf8.count + "Hi, héllo".utf8.count)

            // A repeat of the turn (a re-run after a write whose answer was lost) stores nothing and gets both
            // messages as they were first stored; the counters stay.
            let again = try await store.appendMessages([
                NewMessage(sessionId: session.id, jobId: "job-1", role: .user, content: "changed"),
                NewMessage(sessionId: session.id, jobId: "job-1", role: .assistant, content: "changed too"),
            ])
            #expect(again == turn)
            #expect(try await store.session(id: session.id)?.messageCount == 2)
            // A turn of which only the user's message was stored (a failed job) gets its reply added alone.
            let failed = try await store.appendMessage(NewMessage(sessionId: session.id, jobId: "job-2", role: .user, content: "q"))
            let rerun = try await store.appendMessages([
                NewMessage(sessionId: session.id, jobId: "job-2", role: .user, content: "changed"),
                NewMessage(sessionId: session.id, jobId: "job-2", role: .assistant, content: "new"),
            ])
            #expect(rerun[0] == failed)
            #expect(rerun[1].content == "new")
            #expect(try await store.messages(sessionId: session.id).count == 4)
            #expect(try await store.session(id: session.id)?.messageCount == 4)

            // Every message of a turn belongs to one session.
            let other = try await store.createSession(userId: "alice", title: "Other", modelId: nil)
            await #expect(throws: ChatError.self) {
                try await store.appendMessages([
                    NewMessage(sessionId: session.id, jobId: "job-3", role: .user, content: "a"),
                    NewMessage(sessionId: other.id, jobId: "job-3", role: .assistant, content: "b"),
                ])
            }
            let none = try await store.messages(sessionId: other.id)
            #expect(none.isEmpty)
        }
    }

    @Test("turns arriving together are written together, and each gets its own result: stored, read back, or session gone")
    func turnsArrivingTogetherAreWrittenTogether() async throws {
        try await withStore(threadCount: 1) { store in
            var created: [ChatSession] = []
            for index in 0..<12 { created.append(try await store.createSession(userId: "u\(index)", title: "S\(index)", modelId: nil)) }
            let sessions = Array(created.dropLast())
            let gone = try #require(created.last)
            #expect(try await store.deleteSession(id: gone.id, userId: gone.userId))
            let first = try await store.appendMessages([
                NewMessage(sessionId: sessions[0].id, jobId: "repeat", role: .user, content: "first q"),
                NewMessage(sessionId: sessions[0].id, jobId: "repeat", role: .assistant, content: "first a"),
            ])
            let batchesBefore = store.turnBatchesWritten
            // 11 sessions × 3 turns, a repeat of an earlier turn, and 3 turns for the deleted session, all at once.
            let results = await withTaskGroup(of: (String, String, Result<[ChatMessage], any Error>).self) { group in
                for session in sessions {
                    for turn in 0..<3 {
                        group.addTask {
                            let job = "\(session.id)-\(turn)"
                            let result = await Self.result {
                                try await store.appendMessages([
                                    NewMessage(sessionId: session.id, jobId: job, role: .user, content: "q \(job)"),
                                    NewMessage(sessionId: session.id, jobId: job, role: .assistant, content: "answer é \(job)"),
                                ])
                            }
                            return (session.id, job, result)
                        }
                    }
                }
                group.addTask {
                    let result = await Self.result {
                        try await store.appendMessages([
                            NewMessage(sessionId: sessions[0].id, jobId: "repeat", role: .user, content: "changed"),
                            NewMessage(sessionId: sessions[0].id, jobId: "repeat", role: .assistant, content: "changed"),
                        ])
                    }
                    return (sessions[0].id, "repeat", result)
                }
                for turn in 0..<3 {
                    group.addTask {
                        let result = await Self.result {
                            try await store.appendMessages([NewMessage(sessionId: gone.id, jobId: "gone-\(turn)", role: .user, content: "lost")])
                        }
                        return (gone.id, "gone-\(turn)", result)
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let expectedCount = 37  // 11 sessions × 3 turns, the repeat, 3 for the deleted session
            #expect(results.count == expectedCount)
            // Far fewer writes than turns: they went in batches (the first waited alone, the rest queued behind it).
            #expect(store.turnBatchesWritten - batchesBefore < results.count / 2)
            for (sessionID, job, result) in results {
                switch (sessionID == gone.id, job == "repeat") {
                case (true, _):
                    let error = #expect(throws: ChatError.self) { try result.get() }
                    #expect(error?.code == "SESSION_NOT_FOUND")
                case (false, true):
                    #expect(try result.get() == first)
                case (false, false):
                    let stored = try result.get()
                    let expected: [String] = ["q " + job, "answer é " + job]
                    #expect(stored.map(\.content) == expected)
                    #expect(stored.allSatisfy { $0.sessionId == sessionID && $0.jobId == job })
                }
            }
            #expect(try await store.messages(sessionId: gone.id).isEmpty)
            for session in sessions {
                let messages = try await store.messages(sessionId: session.id)
                let counted = try #require(try await store.session(id: session.id))
                #expect(counted.messageCount == messages.count)
                #expect(counted.contentBytes == messages.reduce(0) { $0 + $1.content.utf8.count })
                #expect(messages.count == (session.id == sessions[0].id ? 8 : 6))
            }
        }
    }

    @Test func aTurnForAMissingSessionStoresNothing() async throws {
        try await withStore { store in
            let missing = "0123456789abcdef01234567"
            let error = await #expect(throws: ChatError.self) {
                try await store.appendMessages([
                    NewMessage(sessionId: missing, jobId: "job-x", role: .user, content: "lost"),
                    NewMessage(sessionId: missing, jobId: "job-x", role: .assistant, content: "also lost"),
                ])
            }
            #expect(error?.code == "SESSION_NOT_FOUND")
            let stored = try await store.messages(sessionId: missing)
            #expect(stored.isEmpty)
        }
    }

    @Test func appendingToAMissingSessionStoresNothing() async throws {
        try await withStore { store in
            let missing = "0123456789abcdef01234567"
            let error = await #expect(throws: ChatError.self) {
                try await store.appendMessage(NewMessage(sessionId: missing, jobId: "job-x", role: .user, content: "lost"))
            }
            #expect(error?.code == "SESSION_NOT_FOUND")
            let stored = try await store.messages(sessionId: missing)
            #expect(stored.isEmpty)
        }
    }

    @Test func anyTextSurvivesTheRoundTrip() async throws {
        try await withStore { store in
            let awkward = "quote \" backslash \\ slash / nul \u{0} bell \u{7} newline \n tab \t del \u{7F} "
                + "sep \u{2028} bmp é 中文 astral 😀👩‍👩‍👧 json {\"$oid\":\"x\"} \\u0000 ]}"
            let session = try await store.createSession(userId: "al\"ice\\\u{1}", title: awkward, modelId: awkward)
            let message = try await store.appendMessage(NewMessage(sessionId: session.id, jobId: awkward, role: .user, content: awkward))

            #expect(try await store.session(id: session.id, userId: "al\"ice\\\u{1}")?.title == awkward)
            #expect(try await store.messages(sessionId: session.id) == [message])
            #expect(message.content == awkward && message.jobId == awkward)
        }
    }

    @Test("messages come in pages, newest first by page and oldest first within one, each once, even when many share a time; recentMessages reads only what a byte budget needs")
    func messagePages() async throws {
        try await withStore { store in
            let session = try await store.createSession(userId: "pager", title: "Long", modelId: nil)
            // 250 messages, five to a millisecond: the cursor must order ties by id.
            let base = Date(timeIntervalSince1970: 1_800_000_000)
            for batch in stride(from: 0, to: 250, by: 50) {
                _ = try await store.appendMessages((batch..<batch + 50).map { index in
                    NewMessage(
                        sessionId: session.id, jobId: "job-\(index)", role: .user, content: String(repeating: "x", count: 100) + "\(index)",
                        createdAt: base.addingTimeInterval(Double(index / 5) / 1000)
                    )
                })
            }
            let all = try await store.messages(sessionId: session.id)
            #expect(all.count == 250)
            var pages: [[ChatMessage]] = []
            var before: MessageCursor?
            repeat {
                let page = try await store.messages(sessionId: session.id, before: before, limit: 100)
                pages.append(page)
                before = page.count == 100 ? page.first.map(MessageCursor.init) : nil
                // A cursor survives its round trip as a client's token.
                if let cursor = before { #expect(MessageCursor(token: cursor.token) == cursor) }
            } while before != nil
            #expect(pages.map(\.count) == [100, 100, 50])
            #expect(pages.reversed().flatMap { $0 }.map(\.id) == all.map(\.id))
            #expect(all.map(\.jobId) == (0..<250).map { "job-\($0)" })
            // 1,000 bytes are about ten messages of 103 bytes: one page of the newest is read, and only it kept.
            let recent = try await store.recentMessages(sessionId: session.id, bytes: 1_000, pageSize: 20)
            #expect(recent.map(\.id) == Array(all.suffix(20)).map(\.id))
            let more = try await store.recentMessages(sessionId: session.id, bytes: 5_000, pageSize: 20)
            #expect(more.map(\.id) == Array(all.suffix(60)).map(\.id))
            for bad in [
                "", "12", "12_zz", "x_0123456789abcdef01234567", "1_0123456789ABCDEF01234567", "99999999999999999_0123456789abcdef01234567",
                "479773337615080_69c2a50a3a61087ffaf00baf", "253402300800000_0123456789abcdef01234567",
            ] {
                #expect(MessageCursor(token: bad) == nil, "\(bad)")
            }
        }
    }

    // MARK: Availability

    @Test func pingAnswersAndShutdownStopsCalls() async throws {
        let store = try MongoSessionStore(configuration: MongoConfiguration(uri: Self.uniqueDatabaseURI(), threadCount: 1))
        try await store.ping()
        try await store.shutdown()
        let error = await #expect(throws: ChatError.self) { try await store.ping() }
        #expect(error?.code == "DATABASE_UNAVAILABLE")
        try await store.shutdown()  // a second shutdown is harmless
    }

    @Test func failsFastWhileMongoIsDownAndRecoversAfterwards() async throws {
        let server = try await ManagedServer.secantus(port: TestEnvironment.freePort())
        let store = try MongoSessionStore(
            configuration: MongoConfiguration(uri: "mongodb://127.0.0.1:\(server.port)/chat_restart", timeout: .seconds(2), threadCount: 2)
        )
        do {
            try await store.prepare()
            let session = try await store.createSession(userId: "alice", title: "Before", modelId: nil)

            await server.kill()
            for _ in 0..<2 {
                let clock = ContinuousClock()
                let started = clock.now
                let error = await #expect(throws: ChatError.self) { try await store.session(id: session.id) }
                #expect(error == ChatError(.unavailable, code: "DATABASE_UNAVAILABLE", message: "The database is unavailable"))
                #expect(clock.now - started < .seconds(10))
            }

            try await server.start()
            let after = try await store.createSession(userId: "alice", title: "After", modelId: nil)
            #expect(try await store.session(id: after.id, userId: "alice") == after)
            try await store.ping()
        } catch {
            try? await store.shutdown()
            await server.shutdown()
            throw error
        }
        try await store.shutdown()
        await server.shutdown()
    }

    @Test("a call whose connection failed is tried once more: any call when it was never sent, an idempotent one after any connection failure; an outage is not retried")
    func retryPolicy() async throws {
        let pool = try MongoClientPool(configuration: MongoConfiguration(uri: Self.uniqueDatabaseURI(), threadCount: 1), logger: Logger(label: "test.mongo"))
        defer { Task { try? await pool.shutdown() } }
        let stream = MONGOC_ERROR_STREAM.rawValue
        let notSent = MongoDriverError(domain: stream, code: 4, message: "Failure during socket delivery: Broken pipe (32)")
        let lost = MongoDriverError(domain: stream, code: 4, message: "Failed to read 4 bytes: socket error or timeout")
        let noServer = MongoDriverError(domain: MONGOC_ERROR_SERVER_SELECTION.rawValue, code: 13053, message: "No suitable servers found")
        /// How many times the body ran, and whether the call succeeded, when its first run fails with `error`.
        func run(_ retry: MongoClientPool.Retry, failingOnceWith error: MongoDriverError) async -> (runs: Int, succeeded: Bool) {
            let runs = Mutex(0)
            let result = await Self.result {
                try await pool.withClient("test", retry: retry) { _ in
                    let run = runs.withLock { $0 += 1; return $0 }
                    if run == 1 { throw error }
                    return 1
                }
            }
            return (runs.withLock { $0 }, (try? result.get()) == 1)
        }
        #expect(await run(.ifNotSent, failingOnceWith: notSent) == (2, true))
        #expect(await run(.ifNotSent, failingOnceWith: lost) == (1, false))
        #expect(await run(.idempotent, failingOnceWith: lost) == (2, true))
        #expect(await run(.idempotent, failingOnceWith: noServer) == (1, false))
        #expect(await run(.never, failingOnceWith: notSent) == (1, false))
        // A failure that comes back on the second run is the caller's: 503, not a loop.
        let always = await Self.result {
            try await pool.withClient("test", retry: .idempotent) { _ -> Int in throw lost }
        }
        if case .failure(let error) = always { #expect((error as? ChatError)?.code == "DATABASE_UNAVAILABLE") } else { Issue.record("it succeeded") }
    }

    // MARK: Support

    /// `TestEnvironment.mongoURI` with its database replaced by a fresh `chat_test_<random>`.
    /// What `body` returned or threw.
    static func result<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    static func uniqueDatabaseURI() -> String {
        let base = TestEnvironment.mongoURI
        let database = "chat_test_\(UInt32.random(in: .min ... .max))"
        guard let scheme = base.range(of: "://") else { return base }
        let afterScheme = base[scheme.upperBound...]
        let hosts = afterScheme.prefix { $0 != "/" && $0 != "?" }
        let query = afterScheme.firstIndex(of: "?").map { String(afterScheme[$0...]) } ?? ""
        return base[..<scheme.upperBound] + hosts + "/" + database + query
    }

    /// Runs `body` with a prepared store on a fresh database, then drops the database and shuts the store down.
    func withStore(threadCount: Int = 2, _ body: (MongoSessionStore) async throws -> Void) async throws {
        let store = try MongoSessionStore(configuration: MongoConfiguration(uri: Self.uniqueDatabaseURI(), threadCount: threadCount))
        do {
            try await store.prepare()
            try await body(store)
        } catch {
            try? await store.dropDatabase()
            try? await store.shutdown()
            throw error
        }
        try await store.dropDatabase()
        try await store.shutdown()
    }
}

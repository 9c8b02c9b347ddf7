import AsyncHTTPClient
import ChatCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Queue
import Testing

@testable import API
@testable import ChatState

/// What one user, or a flood of work, may hold at once: streams, observers and unfinished generations per
/// user; jobs waiting in the queue; idle connections. Past a cap: a clear 429 or 503, and nothing started.
@Suite("resource limits: per-user caps, the queue's backlog, idle connections", .serialized)
struct ResourceLimitsTests {
    static let verifier = try! AccessTokenVerifier(secret: APIFixture.secret)

    /// The user's credits available now.
    static func balance(_ token: String) async throws -> Int {
        try await HTTPProbe.json(.GET, TestEnvironment.accountingURL + "/api/credits/balance", token: token).body["totalCredits"] as? Int ?? -1
    }

    @Test("caps: a third stream, a second observer and a third unfinished reply are 429 and reserve nothing; a hung-up observer frees its slot", .timeLimit(.minutes(2)))
    func perUserCaps() async throws {
        // No worker reads this pair's queue: every job stays unfinished.
        let pair = try ServicePair(
            apiEnvironment: ["MAX_STREAMS_PER_USER": "2", "MAX_OBSERVERS_PER_USER": "1", "MAX_GENERATIONS_PER_USER": "3", "SSE_HEARTBEAT_MS": "200"],
            workerEnvironment: ["JOB_STREAM": uniqueKey("elsewhere")]
        )
        defer { pair.kill() }
        try await pair.ready()
        let user = "caps-\(UUID().uuidString.prefix(8))"
        try await Accounting.fund(user, credits: 10_000, accountingURL: TestEnvironment.accountingURL, verifier: Self.verifier)
        let token = Self.verifier.sign(userID: user, role: .enduser, lifetime: 600)
        var sessions: [String] = []
        for index in 0..<5 {
            let created = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "s\(index)"])
            sessions.append(try #require(created.body["sessionId"] as? String))
        }
        let auth = ["Authorization": "Bearer \(token)"]
        let first = try await SSEConnection.open(pair.apiURL + "/api/chat/sessions/\(sessions[0])/stream", headers: auth, json: ["message": "one"])
        let second = try await SSEConnection.open(pair.apiURL + "/api/chat/sessions/\(sessions[1])/stream", headers: auth, json: ["message": "two"])
        #expect(first.status == 200 && second.status == 200)
        let before = try await Self.balance(token)
        let third = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions/\(sessions[2])/stream", token: token, body: ["message": "three"])
        #expect(third.status == 429)
        #expect(third.body["code"] as? String == "TOO_MANY_STREAMS")
        #expect(try await Self.balance(token) == before, "a refused stream reserved credits")
        // A job of its own without a stream is the third unfinished one; a fourth is refused before any reservation.
        let queued = try await HTTPProbe.json(
            .POST, pair.apiURL + "/api/chat/sessions/\(sessions[3])/messages", token: token, body: ["message": "async"],
            headers: ["Prefer": "respond-async"]
        )
        #expect(queued.status == 202)
        let afterThird = try await Self.balance(token)
        let fourth = try await HTTPProbe.json(
            .POST, pair.apiURL + "/api/chat/sessions/\(sessions[4])/messages", token: token, body: ["message": "async"],
            headers: ["Prefer": "respond-async"]
        )
        #expect(fourth.status == 429)
        #expect(fourth.body["code"] as? String == "TOO_MANY_GENERATIONS")
        #expect(try await Self.balance(token) == afterThird, "a refused generation reserved credits")
        let idle = try await HTTPProbe.json(.GET, pair.apiURL + "/api/chat/sessions/\(sessions[4])", token: token)
        #expect(idle.body["activeJobId"] == nil || idle.body["activeJobId"] is NSNull)

        // A stream refused after its slot was taken with the session (too few credits for its reservation: 402)
        // gives the slot back: three in a row are each 402, never 429 (with a slot kept by each, the third would be
        // over the cap of two).
        let poorUser = "poor-\(UUID().uuidString.prefix(8))"
        try await Accounting.fund(poorUser, credits: 1, accountingURL: TestEnvironment.accountingURL, verifier: Self.verifier)
        let poor = Self.verifier.sign(userID: poorUser, role: .enduser, lifetime: 600)
        let poorSession = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: poor, body: ["title": "p"])
        let poorID = try #require(poorSession.body["sessionId"] as? String)
        for _ in 0..<3 {
            let broke = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions/\(poorID)/stream", token: poor, body: ["message": "m"])
            #expect(broke.status == 402)
        }

        let supervisor = Self.verifier.sign(userID: "sup-\(UUID().uuidString.prefix(8))", role: .supervisor, lifetime: 600)
        let watching = try await SSEConnection.open(
            pair.apiURL + "/api/chat/sessions/\(sessions[0])/observe", method: .GET, headers: ["Authorization": "Bearer \(supervisor)"]
        )
        #expect(watching.status == 200)
        let refused = try await HTTPProbe.status(pair.apiURL + "/api/chat/sessions/\(sessions[1])/observe", token: supervisor)
        #expect(refused == 429)
        // The supervisor hangs up: the relay notices at its next heartbeat and gives the slot back.
        watching.close()
        let other = sessions[1]
        try await expectEventually(.seconds(10)) {
            let again = try await SSEConnection.open(
                pair.apiURL + "/api/chat/sessions/\(other)/observe", method: .GET, headers: ["Authorization": "Bearer \(supervisor)"]
            )
            defer { again.close() }
            return again.status == 200
        }
        first.close()
        second.close()
        _ = try await pair.stop()
    }

    @Test("a full queue: new generations get 503 QUEUE_FULL with Retry-After and reserve nothing", .timeLimit(.minutes(2)))
    func backlogCap() async throws {
        let pair = try ServicePair(apiEnvironment: ["QUEUE_MAX_WAITING": "2"], workerEnvironment: ["JOB_STREAM": uniqueKey("elsewhere")])
        defer { pair.kill() }
        try await pair.ready()
        var answers: [(status: Int, code: String?, retryAfter: String?)] = []
        var tokens: [String] = []
        for index in 0..<4 {
            let user = "full-\(index)-\(UUID().uuidString.prefix(6))"
            try await Accounting.fund(user, credits: 1_000, accountingURL: TestEnvironment.accountingURL, verifier: Self.verifier)
            let token = Self.verifier.sign(userID: user, role: .enduser, lifetime: 600)
            tokens.append(token)
            let created = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "q"])
            let sessionID = try #require(created.body["sessionId"] as? String)
            // Past the gate's refresh interval, so each request sees the jobs queued before it.
            try await Task.sleep(for: .milliseconds(250))
            var request = HTTPClientRequest(url: pair.apiURL + "/api/chat/sessions/\(sessionID)/messages")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Prefer", value: "respond-async")
            request.body = .bytes(ByteBuffer(string: #"{"message":"wait"}"#))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 16)
            let code = ((try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any])?["code"] as? String
            answers.append((Int(response.status.code), code, response.headers.first(name: "Retry-After")))
        }
        #expect(answers.map(\.status) == [202, 202, 503, 503])
        #expect(answers[2].code == "QUEUE_FULL" && answers[2].retryAfter != nil)
        for token in tokens[2...] { #expect(try await Self.balance(token) == 1_000, "a refused generation reserved credits") }
        // A session created with its first message while the queue is full is refused whole: no empty session.
        let late = tokens[3]
        let refused = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: late, body: ["title": "with a message", "initialMessage": "hi"])
        #expect(refused.status == 503 && refused.body["code"] as? String == "QUEUE_FULL")
        let list = try await HTTPProbe.json(.GET, pair.apiURL + "/api/chat/sessions", token: late)
        #expect((list.body["sessions"] as? [[String: Any]])?.compactMap { $0["title"] as? String } == ["q"], "a refused create left a session")
        _ = try await pair.stop()
    }

    @Test("a reader that stops reading is closed once its connection stayed unwritable for HTTP_IDLE_TIMEOUT_MS, and its stream ends", .timeLimit(.minutes(1)))
    func stalledReaderClosed() async throws {
        let pair = try ServicePair(apiEnvironment: ["HTTP_IDLE_TIMEOUT_MS": "1000"])
        defer { pair.kill() }
        try await pair.ready()
        let user = "stall-\(UUID().uuidString.prefix(8))"
        try await Accounting.fund(user, credits: 100, accountingURL: TestEnvironment.accountingURL, verifier: Self.verifier)
        let token = Self.verifier.sign(userID: user, role: .enduser, lifetime: 600)
        let created = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "much said"])
        let sessionID = try #require(created.body["sessionId"] as? String)
        // Four megabytes of events in the session's stream, as a worker would have written them.
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let events = SessionEvents(redis: redis)
        let filler = String(repeating: "x", count: 2_000)
        let first = try await events.append(sessionID: sessionID, jobID: "j", type: "chunk", data: #"{"content":"first","index":0}"#)
        for index in 1...2_000 {
            try await events.append(sessionID: sessionID, jobID: "j", type: "chunk", data: #"{"content":"\#(filler)","index":\#(index)}"#)
        }
        let supervisor = Self.verifier.sign(userID: "supervisor1", role: .supervisor, lifetime: 600)
        let before = try await MetricsScrape.fetch(pair.apiURL + "/metrics")
        let reader = RawConnection.StalledReader(
            port: pair.apiPort,
            bytes: "GET /api/chat/sessions/\(sessionID)/observe?lastEventId=\(first)&access_token=\(supervisor) HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        let open = #"chat_sse_streams_open{kind="observer"}"#
        try await expectEventually(.seconds(10)) { try await MetricsScrape.fetch(pair.apiURL + "/metrics").delta(open, since: before) == 1 }
        // It reads nothing: once its buffers are full the server closes it, and its stream ends.
        try await expectEventually(.seconds(15)) { try await MetricsScrape.fetch(pair.apiURL + "/metrics").delta(open, since: before) == 0 }
        let (bytes, closed) = try await reader.drain(limit: .seconds(20))
        #expect(closed, "the connection is still open after \(bytes) bytes")
        #expect(bytes < 4_000_000, "\(bytes) bytes: the whole replay was written")
        _ = try await pair.stop()
    }

    @Test("a connection that sends half a request and waits is closed after HTTP_IDLE_TIMEOUT_MS; an open stream is not", .timeLimit(.minutes(1)))
    func idleConnectionsClosed() async throws {
        let pair = try ServicePair(apiEnvironment: ["HTTP_IDLE_TIMEOUT_MS": "500"])
        defer { pair.kill() }
        try await pair.ready()
        let clock = ContinuousClock()
        let started = clock.now
        let closed = try await RawConnection.sendAndAwaitClose(port: pair.apiPort, bytes: "GET /api/models HTTP/1.1\r\nHost: x\r\n", limit: .seconds(10))
        #expect(closed, "the half request's connection stayed open")
        #expect(clock.now - started < .seconds(5))
        // Nothing at all, or only the blank lines a parser skips before a request line, is no request either.
        for bytes in ["", "\r\n\r\n\r\n"] {
            let since = clock.now
            #expect(try await RawConnection.sendAndAwaitClose(port: pair.apiPort, bytes: bytes, limit: .seconds(10)), "\(bytes.debugDescription)")
            #expect(clock.now - since < .seconds(5))
        }
        // A stream that is quiet for longer than the idle timeout stays open (heartbeats are not needed for that).
        let user = "idle-\(UUID().uuidString.prefix(8))"
        try await Accounting.fund(user, credits: 1_000, accountingURL: TestEnvironment.accountingURL, verifier: Self.verifier)
        let token = Self.verifier.sign(userID: user, role: .enduser, lifetime: 600)
        let created = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "long"])
        let sessionID = try #require(created.body["sessionId"] as? String)
        let stream = try await SSEConnection.open(
            pair.apiURL + "/api/chat/sessions/\(sessionID)/stream", headers: ["Authorization": "Bearer \(token)"],
            json: ["message": "[[slow-first-byte:2]] take your time"]
        )
        var events: [String] = []
        while let event = try await stream.next() { events.append(event.event) }
        #expect(events.last == "complete", "\(events)")
        _ = try await pair.stop()
    }

    @Test("cancel, update-stream and DELETE are limited per user (the write class): 429 past the limit")
    func writesAreLimited() async throws {
        let limits = try RateLimitSettings(environment: Environment(["RATE_LIMIT_WRITE": "2/60:2"]))
        try await APIFixture.with(rateLimits: limits) { fixture, client in
            let user = "writer-\(UUID().uuidString.prefix(8))"
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<3 {
                let response = try await client.execute(
                    uri: "/api/chat/sessions/000000000000000000000000/cancel", method: .post, headers: fixture.auth(user)
                )
                statuses.append(response.status)
            }
            #expect(statuses == [.notFound, .notFound, .tooManyRequests])
            let delete = try await client.execute(uri: "/api/chat/sessions/000000000000000000000000", method: .delete, headers: fixture.auth(user))
            #expect(delete.status == .tooManyRequests)
            let update = try await client.execute(
                uri: "/api/chat/sessions/000000000000000000000000/update-stream", method: .post, headers: fixture.auth(user),
                body: ByteBuffer(string: #"{"streamingSessionId":"x"}"#)
            )
            #expect(update.status == .tooManyRequests)
        }
    }
}

@Suite("stream slots renewed while their stream lives", .timeLimit(.minutes(1)))
struct StreamLeaseTests {
    @Test("a stream that outlives several leases keeps its slot, and gives it back when it ends")
    func renewedWhileHeld() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        // Leases of 2 s renewed every 2/3 s: a renewal has more than a second of slack, so a loaded machine's
        // scheduling delays do not let the slot lapse (in production a lease is at least 30 s).
        var slots = UserSlots(redis: redis, lease: .seconds(2))
        slots.keyPrefix = uniqueKey("slots") + ":"
        let limits = StreamLimits(slots: slots, maxStreams: 1, maxObservers: 1)
        let user = "lease-\(UUID().uuidString.prefix(6))"
        let lease = try await limits.open(.observers, userID: user, id: "first")
        try await lease.hold {
            // Three leases long: without renewals the slot would lapse and a second observer would be let in.
            let clock = ContinuousClock()
            let end = clock.now + .seconds(6)
            while clock.now < end {
                #expect(try await slots.held(.observers, userID: user) == 1)
                await #expect(throws: ChatError.self) { _ = try await limits.open(.observers, userID: user, id: "second") }
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        #expect(try await slots.held(.observers, userID: user) == 0)
        // Longer than a lease later, nothing took the slot again (a renewal after the release would have).
        try await Task.sleep(for: .milliseconds(2_200))
        #expect(try await slots.held(.observers, userID: user) == 0)
        let next = try await limits.open(.observers, userID: user, id: "third")
        await next.release()
    }

    /// Limits over slots of their own, with a lease far longer than these tests wait.
    static func limits(_ redis: RedisClient) -> (UserSlots, StreamLimits) {
        var slots = UserSlots(redis: redis, lease: .seconds(60))
        slots.keyPrefix = uniqueKey("slots") + ":"
        return (slots, StreamLimits(slots: slots, maxStreams: 2, maxObservers: 1))
    }

    @Test("a streaming response the server drops unsent (its client hung up first) gives its slot back, long before the lease lapses")
    func droppedResponseGivesSlotBack() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let (slots, limits) = Self.limits(redis)
        let user = "handoff-\(UUID().uuidString.prefix(6))"
        let sent = try await limits.open(.streams, userID: user, id: "sent")
        let unsent = try await limits.open(.streams, userID: user, id: "unsent")
        #expect(try await slots.held(.streams, userID: user) == 2)
        // A body that ran took its lease: the hand-off leaves that slot to the body. Dropped first, so that a
        // release it wrongly made would be on its way before the other one's.
        do {
            let handOff = LeaseHandOff(sent)
            #expect(handOff.take().id == "sent")
        }
        // As the server does with a response whose head it could not write: the body is released, never run.
        _ = Response(status: .ok, body: unsent.responseBody { lease, writer in
            _ = try await lease.hold { try await writer.finish(nil) }
        })
        let key = slots.key(.streams, userID: user)
        try await expectEventually(.seconds(10)) {
            try await redis.send("ZSCORE", key, "unsent").string == nil
        }
        let members = try await redis.send("ZRANGE", key, "0", "-1").array?.compactMap(\.string) ?? []
        #expect(members == ["sent"])
        await sent.release()
    }

    @Test("through chat-api: a reply stream, an OpenAI stream and an observer whose responses are dropped unsent give their slots back")
    func unsentResponsesGiveSlotsBack() async throws {
        let redis = try testRedisClient()
        let (slots, limits) = Self.limits(redis)
        try await APIFixture.with(redis: redis, streamLimits: limits) { fixture, client in
            let user = try await Accounting.fundedUser("unsent", verifier: fixture.verifier)
            let supervisor = "unsent-sup-\(UUID().uuidString.prefix(6))"
            var auth: HTTPFields = [.authorization: "Bearer " + user.token, .contentType: "application/json"]
            let session = try await client.execute(uri: "/api/chat/sessions", method: .post, headers: auth, body: ByteBuffer(string: #"{"title":"t"}"#)) {
                json($0)["sessionId"] as? String
            }
            let sessionID = try #require(session)
            auth[.testUnsent] = "1"
            let dropped = HTTPField.Name.testDroppedStatus

            try await client.execute(
                uri: "/api/chat/sessions/\(sessionID)/stream", method: .post, headers: auth, body: ByteBuffer(string: #"{"message":"hello"}"#)
            ) { #expect($0.headers[dropped] == "200") }
            try await expectEventually(.seconds(10)) { try await slots.held(.streams, userID: user.id) == 0 }

            try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: auth,
                body: ByteBuffer(string: #"{"model":"\#(OpenAIAPITests.haiku)","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
            ) { #expect($0.headers[dropped] == "200") }
            try await expectEventually(.seconds(10)) { try await slots.held(.streams, userID: user.id) == 0 }

            var observer = fixture.auth(supervisor, role: .supervisor)
            observer[.testUnsent] = "1"
            try await client.execute(uri: "/api/chat/sessions/\(sessionID)/observe", method: .get, headers: observer) {
                #expect($0.headers[dropped] == "200")
            }
            try await expectEventually(.seconds(10)) { try await slots.held(.observers, userID: supervisor) == 0 }
        }
    }

    @Test("a slot is given back by a task that was cancelled: its release, and a stream whose body ends by cancellation")
    func releaseFromCancelledTask() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let (slots, limits) = Self.limits(redis)
        let user = "cancelled-\(UUID().uuidString.prefix(6))"
        let lease = try await limits.open(.observers, userID: user, id: "only")
        let wasCancelled = await Task {
            withUnsafeCurrentTask { $0?.cancel() }
            let cancelled = Task.isCancelled
            await lease.release()
            return cancelled
        }.value
        #expect(wasCancelled)
        #expect(try await slots.held(.observers, userID: user) == 0)
        // And a stream whose body throws while cancelled gives its slot back too.
        let second = try await limits.open(.observers, userID: user, id: "second")
        let held = Task {
            try await second.hold { try await Task.sleep(for: .seconds(30)) }
        }
        held.cancel()
        _ = await held.result
        #expect(try await slots.held(.observers, userID: user) == 0)
    }
}

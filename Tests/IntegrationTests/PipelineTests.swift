import AsyncHTTPClient
import ChatCore
import Accounting
import Bedrock
import ChatStore
import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import ChatState
@testable import Queue

/// Two chat-api and two chat-worker processes on a jobs stream and a database of their own, over the Redis,
/// MongoDB, emulator and stand-ins that `make test` started.
final class PipelineFixture: @unchecked Sendable {
    // @unchecked: the process table is only changed by the test that owns the fixture, one call at a time.
    let apiPorts = [TestEnvironment.freePort(), TestEnvironment.freePort()]
    let stream = uniqueKey("pipeline-jobs")
    let database = MongoSessionStoreTests.uniqueDatabaseURI()
    let verifier = try! AccessTokenVerifier(secret: APIFixture.secret)
    /// How long a job goes without a heartbeat before another worker takes it over.
    let visibilityMilliseconds: Int
    private(set) var apis: [ChildProcess] = []
    private(set) var workers: [String: ChildProcess] = [:]

    var environment: [String: String] {
        [
            "REDIS_URL": TestEnvironment.redisURL, "MONGO_URI": database, "JWT_ACCESS_SECRET": APIFixture.secret,
            "ACCOUNTING_URL": TestEnvironment.accountingURL, "JOB_STREAM": stream, "LOG_LEVEL": "warning", "RATE_LIMIT_ENABLED": "false",
            "JOB_VISIBILITY_TIMEOUT_MS": String(visibilityMilliseconds), "MESSAGE_WAIT_TIMEOUT_MS": "20000", "SSE_HEARTBEAT_MS": "500",
        ]
    }

    init(visibilityMilliseconds: Int = 4_000) {
        self.visibilityMilliseconds = visibilityMilliseconds
    }

    func start() async throws {
        for port in apiPorts {
            apis.append(try ChildProcess(executable: ChildProcess.binary("CHAT_API_BIN"), environment: environment.merging(["PORT": String(port), "HOST": "127.0.0.1"]) { $1 }))
        }
        for index in 0..<2 { try startWorker("w\(index)-\(UUID().uuidString.prefix(6))") }
        for port in apiPorts {
            try await expectEventually(.seconds(30)) { (try? await HTTPProbe.status("http://127.0.0.1:\(port)/readyz")) == 200 }
        }
    }

    func startWorker(_ name: String) throws {
        workers[name] = try ChildProcess(executable: ChildProcess.binary("CHAT_WORKER_BIN"), environment: environment.merging(["WORKER_CONSUMER_NAME": name]) { $1 })
    }

    func stop() async {
        for process in apis + Array(workers.values) { process.signal(SIGKILL) }
        for process in apis + Array(workers.values) { _ = try? await process.waitForExit(limit: .seconds(10)) }
    }

    func url(_ path: String, api: Int = 0) -> String { "http://127.0.0.1:\(apiPorts[api])\(path)" }

    func token(_ user: String, role: UserRole = .enduser) -> String { verifier.sign(userID: user, role: role, lifetime: 900) }

    /// A funded user with a new session; returns the user, the token and the session id.
    func session(credits: Int = 1_000) async throws -> (user: String, token: String, sessionID: String) {
        let user = "p-\(UUID().uuidString.prefix(8))"
        try await Accounting.fund(user, credits: credits, accountingURL: TestEnvironment.accountingURL, verifier: verifier)
        let token = token(user)
        let created = try await HTTPProbe.json(.POST, url("/api/chat/sessions"), token: token, body: ["title": "pipeline"])
        #expect(created.status == 201)
        return (user, token, created.body["sessionId"] as? String ?? "")
    }

    func messages(_ sessionID: String, token: String) async throws -> [[String: Any]] {
        try await HTTPProbe.json(.GET, url("/api/chat/sessions/\(sessionID)/messages"), token: token).body["messages"] as? [[String: Any]] ?? []
    }
}

/// Runs `body` with a started pipeline, always stopping its processes.
func withPipeline(visibilityMilliseconds: Int = 4_000, _ body: (PipelineFixture) async throws -> Void) async throws {
    let fixture = PipelineFixture(visibilityMilliseconds: visibilityMilliseconds)
    do {
        try await fixture.start()
        try await body(fixture)
    } catch {
        await fixture.stop()
        throw error
    }
    await fixture.stop()
}

func chunkText(_ events: [SSEEvent]) -> String {
    events.filter { $0.event == "chunk" }.compactMap { $0.json["content"] as? String }.joined()
}

@Suite("The generation pipeline through HTTP: chat-api ×2, chat-worker ×2, Redis, MongoDB, the emulator, the stand-ins", .serialized)
struct PipelineTests {
    @Test("TC-09 / flow 4: streamed text = the chunks = the persisted reply = the emulator's; billed tokens = the emulator's usage")
    func streamEndToEnd() async throws {
        try await withPipeline { fixture in
            let (user, token, sessionID) = try await fixture.session()
            let message = "Tell me about quantum computing [[tokens:15]]"
            let sse = try await SSEConnection.open(fixture.url("/api/chat/sessions/\(sessionID)/stream"), headers: ["Authorization": "Bearer \(token)"], json: ["message": message])
            #expect(sse.status == 200)
            let events = try await sse.collect { $0.event == "complete" || $0.event == "error" }
            #expect(events.map(\.event) == ["model"] + Array(repeating: "chunk", count: 15) + ["complete"])
            #expect(events.filter { $0.event == "chunk" }.compactMap { $0.json["index"] as? Int } == Array(0..<15))
            #expect(events.allSatisfy { $0.id != nil })
            let complete = try #require(events.last).json
            let text = chunkText(events)
            #expect(complete["content"] as? String == text)
            #expect(text.split(separator: " ").count == 15)
            #expect(complete["outputTokens"] as? Int == 15)
            #expect(complete["inputTokens"] as? Int == message.split(separator: " ").count)
            #expect(complete["stopReason"] as? String == "end_turn")
            let stored = try await fixture.messages(sessionID, token: token)
            #expect(stored.compactMap { $0["role"] as? String } == ["user", "assistant"])
            #expect(stored.last?["content"] as? String == text)
            #expect(stored.last?["outputTokens"] as? Int == 15)
            // Billed with the emulator's counts: the accounting service recorded exactly those tokens.
            let usage = try await HTTPProbe.json(.GET, TestEnvironment.accountingURL + "/api/usage/stats", token: fixture.token(user))
            #expect(usage.body["totalOutputTokens"] as? Int == 15)
            #expect(usage.body["totalInputTokens"] as? Int == message.split(separator: " ").count)
            #expect(usage.body["totalCreditsUsed"] as? Int == complete["creditsCharged"] as? Int)
            // The emulator gives the same text for the same prompt: what the client saw is what it produced.
            let emulatorModel = try #require(ModelCatalog.builtIn.model(id: ModelCatalog.builtIn.defaultModelID))
            try await EmulatorFixture.withClient { client in
                let direct = try await client.generate(model: emulatorModel, request: GenerationRequestFixture.single(message))
                #expect(direct.text == text)
                #expect(direct.outputTokens == 15)
            }
        }
    }

    @Test("while a reply streams the session shows the user's message, under the id it is stored with; the stream says where its time went")
    func messageShownWhileStreaming() async throws {
        try await withPipeline { fixture in
            let (_, token, sessionID) = try await fixture.session()
            let message = "A slow one [[tokens:8]] [[tps:4]]"
            let sse = try await SSEConnection.open(fixture.url("/api/chat/sessions/\(sessionID)/stream"), headers: ["Authorization": "Bearer \(token)"], json: ["message": message])
            #expect(sse.status == 200)
            let timing = sse.headers.first(name: "Server-Timing") ?? ""
            for span in ["auth", "ratelimit", "session", "reserve", "enqueue", "server"] { #expect(timing.contains("\(span);dur=")) }
            // The stream's slot is taken within the session's claim (one Redis call), not a step of its own.
            #expect(!timing.contains("slot;dur="))
            // chat-api's whole time covers each of its steps.
            let parsed = Dictionary(
                timing.split(separator: ",").compactMap { entry -> (String, Double)? in
                    let parts = entry.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                    guard parts.count == 2, let value = Double(parts[1].dropFirst(4)) else { return nil }
                    return (parts[0], value)
                }, uniquingKeysWith: +)
            #expect((parsed["server"] ?? 0) >= ["session", "reserve", "enqueue"].compactMap { parsed[$0] }.reduce(0, +) - 0.01)
            let first = try await sse.collect { $0.event == "chunk" }
            #expect(first.last?.event == "chunk")
            let during = try await fixture.messages(sessionID, token: token)
            #expect(during.compactMap { $0["role"] as? String } == ["user"])
            #expect(during.first?["content"] as? String == message)
            let pendingID = try #require(during.first?["messageId"] as? String)
            let rest = try await sse.collect { $0.event == "complete" || $0.event == "error" }
            let complete = try #require(rest.last)
            #expect(complete.event == "complete")
            let spans = try #require(complete.json["spans"] as? [String: Any])
            for name in ["pickup", "prepare", "firstByte", "publish"] { #expect(((spans[name] as? NSNumber)?.doubleValue ?? -1) >= 0) }
            let after = try await fixture.messages(sessionID, token: token)
            #expect(after.compactMap { $0["role"] as? String } == ["user", "assistant"])
            #expect(after.first?["messageId"] as? String == pendingID)
        }
    }

    @Test("EventSource form: GET with access_token in the query")
    func eventSourceForm() async throws {
        try await withPipeline { fixture in
            let (_, token, sessionID) = try await fixture.session()
            let query = "message=Hello%20there%20%5B%5Btokens%3A4%5D%5D&access_token=\(token)"
            let sse = try await SSEConnection.open(fixture.url("/api/chat/sessions/\(sessionID)/stream?\(query)"), method: .GET)
            #expect(sse.status == 200)
            let events = try await sse.collect { $0.event == "complete" }
            #expect(events.filter { $0.event == "chunk" }.count == 4)
        }
    }

    @Test("resume: three chunks, drop, reconnect to the other chat-api with Last-Event-ID: the rest, no gap, no duplicate")
    func resumeOnOtherProcess() async throws {
        try await withPipeline { fixture in
            let (_, token, sessionID) = try await fixture.session()
            let first = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/stream", api: 0), headers: ["Authorization": "Bearer \(token)"],
                json: ["message": "Count slowly [[tokens:30]] [[tps:40]]"]
            )
            var seen = try await first.collect { event in event.event == "chunk" && (event.json["index"] as? Int) == 2 }
            #expect(seen.filter { $0.event == "chunk" }.count == 3)
            let lastID = try #require(seen.last?.id)
            _ = first  // dropped here: the connection goes away mid-stream
            let second = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/stream", api: 1), headers: ["Authorization": "Bearer \(token)", "Last-Event-ID": lastID]
            )
            #expect(second.status == 200)
            let rest = try await second.collect { $0.event == "complete" }
            seen += rest
            #expect(seen.filter { $0.event == "chunk" }.compactMap { $0.json["index"] as? Int } == Array(0..<30))
            #expect(Set(seen.compactMap(\.id)).count == seen.count)
            #expect(rest.last?.json["content"] as? String == chunkText(seen))
            // An EventSource reconnecting after the last event gets 204, which tells it to stop.
            let after = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/stream", api: 0), method: .GET,
                headers: ["Authorization": "Bearer \(token)", "Last-Event-ID": try #require(rest.last?.id)]
            )
            #expect(after.status == 204)
        }
    }

    @Test("one generation at a time (409), invalid model (400), no credits (402), another user's session (404)")
    func refusals() async throws {
        try await withPipeline { fixture in
            let (_, token, sessionID) = try await fixture.session()
            let running = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/stream"), headers: ["Authorization": "Bearer \(token)"], json: ["message": "Long [[tokens:40]] [[tps:20]]"]
            )
            _ = try await running.collect { $0.event == "chunk" }
            let second = try await HTTPProbe.json(.POST, fixture.url("/api/chat/sessions/\(sessionID)/stream", api: 1), token: token, body: ["message": "again"])
            #expect(second.status == 409)
            let invalid = try await HTTPProbe.json(.POST, fixture.url("/api/chat/sessions/\(sessionID)/stream"), token: token, body: ["message": "Hello world", "modelId": "invalid-model-id"])
            #expect(invalid.status == 400)
            #expect(invalid.body["message"] as? String == "Invalid model ID")
            let stranger = try await HTTPProbe.json(.POST, fixture.url("/api/chat/sessions/\(sessionID)/stream"), token: fixture.token("stranger"), body: ["message": "hi"])
            #expect(stranger.status == 404)
            _ = try await running.collect { $0.event == "complete" }

            // TC-13: a session whose owner has spent nearly everything cannot reserve a long essay.
            let (_, poorToken, poorSession) = try await fixture.session(credits: 1)
            let poor = try await HTTPProbe.json(
                .POST, fixture.url("/api/chat/sessions/\(poorSession)/stream"), token: poorToken,
                body: ["message": "Write a long essay about artificial intelligence", "modelId": "anthropic.claude-3-sonnet-20240229-v1:0"]
            )
            #expect(poor.status == 402)
            #expect(poor.body["message"] as? String == "Insufficient credits to process request")
        }
    }

    @Test("TC-07 / flow 3: non-streaming messages answer with the reply; respond-async gives a job to poll")
    func nonStreaming() async throws {
        try await withPipeline { fixture in
            let (_, token, sessionID) = try await fixture.session()
            let reply = try await HTTPProbe.json(
                .POST, fixture.url("/api/chat/sessions/\(sessionID)/messages"), token: token,
                body: ["message": "What are the key principles of microservice architecture? [[tokens:9]]", "modelId": "anthropic.claude-3-sonnet-20240229-v1:0"]
            )
            #expect(reply.status == 200)
            let body = reply.body["reply"] as? [String: Any] ?? [:]
            #expect((body["content"] as? String)?.split(separator: " ").count == 9)
            let accepted = try await HTTPProbe.json(
                .POST, fixture.url("/api/chat/sessions/\(sessionID)/messages"), token: token, body: ["message": "Async please [[tokens:5]]"],
                headers: ["Prefer": "respond-async"]
            )
            #expect(accepted.status == 202)
            let jobID = try #require(accepted.body["jobId"] as? String)
            try await expectEventually(.seconds(20)) {
                (try? await HTTPProbe.json(.GET, fixture.url("/api/jobs/\(jobID)", api: 1), token: token))?.body["status"] as? String == "completed"
            }
            let job = try await HTTPProbe.json(.GET, fixture.url("/api/jobs/\(jobID)"), token: token)
            #expect(((job.body["result"] as? [String: Any])?["content"] as? String)?.split(separator: " ").count == 5)
            #expect(try await HTTPProbe.json(.GET, fixture.url("/api/jobs/\(jobID)"), token: fixture.token("someone-else")).status == 404)
            // TC-08: four messages, in order.
            #expect(try await fixture.messages(sessionID, token: token).compactMap { $0["role"] as? String } == ["user", "assistant", "user", "assistant"])
        }
    }

    @Test("cancel stops the running job at once: partial reply stored as cancelled, billed partially")
    func cancel() async throws {
        try await withPipeline { fixture in
            let (_, token, sessionID) = try await fixture.session()
            let sse = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/stream"), headers: ["Authorization": "Bearer \(token)"], json: ["message": "Go on [[tokens:200]] [[tps:20]]"]
            )
            _ = try await sse.collect { $0.event == "chunk" && ($0.json["index"] as? Int) == 2 }
            let clock = ContinuousClock()
            let start = clock.now
            #expect(try await HTTPProbe.json(.POST, fixture.url("/api/chat/sessions/\(sessionID)/cancel", api: 1), token: token).status == 200)
            let rest = try await sse.collect { $0.event == "complete" || $0.event == "error" }
            // The reply had nine seconds to run; it stopped within a few (a loaded machine delays the cancel's hops).
            #expect(clock.now - start < .seconds(4), "stopped \(clock.now - start) after the cancel")
            let complete = try #require(rest.last)
            #expect(complete.event == "complete")
            #expect(complete.json["stopReason"] as? String == "cancelled")
            let output = complete.json["outputTokens"] as? Int ?? 0
            #expect(output >= 3 && output < 200)
            let stored = try await fixture.messages(sessionID, token: token)
            #expect(stored.last?["status"] as? String == "cancelled")
            #expect(stored.last?["content"] as? String == complete.json["content"] as? String)
            // The session is free again.
            let next = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/stream"), headers: ["Authorization": "Bearer \(token)"], json: ["message": "Again [[tokens:2]]"]
            )
            #expect(next.status == 200)
            _ = try await next.collect { $0.event == "complete" }
        }
    }

    @Test("deleting the session mid-reply stops the job, which still ends and bills what was generated")
    func deleteDuringGeneration() async throws {
        try await withPipeline { fixture in
            let (user, token, sessionID) = try await fixture.session()
            let sse = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/stream"), headers: ["Authorization": "Bearer \(token)"], json: ["message": "Go [[tokens:200]] [[tps:20]]"]
            )
            _ = try await sse.collect { $0.event == "chunk" && ($0.json["index"] as? Int) == 2 }
            #expect(try await HTTPProbe.json(.DELETE, fixture.url("/api/chat/sessions/\(sessionID)"), token: token).status == 200)
            let rest = try await sse.collect { $0.event == "complete" || $0.event == "error" }
            #expect(rest.last?.event == "complete")
            #expect(rest.last?.json["stopReason"] as? String == "cancelled")
            let output = rest.last?.json["outputTokens"] as? Int ?? 0
            #expect(output >= 3 && output < 200)
            let usage = try await HTTPProbe.json(.GET, TestEnvironment.accountingURL + "/api/usage/stats", token: fixture.token(user))
            #expect(usage.body["totalOutputTokens"] as? Int == output)
        }
    }

    @Test("a request Bedrock refuses (ValidationException) ends with an error event and costs nothing")
    func refusedCostsNothing() async throws {
        try await withPipeline { fixture in
            let (user, token, sessionID) = try await fixture.session(credits: 500)
            let sse = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/stream"), headers: ["Authorization": "Bearer \(token)"], json: ["message": "Bad marker [[tokens:lots]]"]
            )
            let events = try await sse.collect { $0.event == "complete" || $0.event == "error" }
            #expect(events.last?.event == "error")
            let balance = try await HTTPProbe.json(.GET, TestEnvironment.accountingURL + "/api/credits/balance", token: fixture.token(user))
            #expect(balance.body["totalCredits"] as? Int == 500)
            #expect((balance.body["reservedCredits"] as? Int ?? 0) == 0)
        }
    }

    @Test("a quiet event stream gets heartbeat comments at the configured interval")
    func heartbeats() async throws {
        try await withPipeline { fixture in
            let (_, _, sessionID) = try await fixture.session()
            let observer = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/observe"), method: .GET,
                headers: ["Authorization": "Bearer \(fixture.token("supervisor1", role: .supervisor))"]
            )
            #expect(try await observer.next()?.event == "observer")
            let clock = ContinuousClock()
            let start = clock.now
            #expect(try await withTimeout(.seconds(10)) { try await observer.nextComment() } == "heartbeat")
            #expect(try await withTimeout(.seconds(10)) { try await observer.nextComment() } == "heartbeat")
            #expect(clock.now - start >= .milliseconds(900), "two heartbeats 500 ms apart")
        }
    }

    @Test("a worker killed mid-stream: the other finishes the job, the client sees reset then the full text, one reply stored, settled once")
    func workerKilled() async throws {
        try await withPipeline { fixture in
            let (user, token, sessionID) = try await fixture.session()
            let sse = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/stream"), headers: ["Authorization": "Bearer \(token)"], json: ["message": "Survive this [[tokens:30]] [[tps:20]]"]
            )
            let before = try await sse.collect { $0.event == "chunk" && ($0.json["index"] as? Int) == 4 }
            let jobID = try #require(before.first?.json["jobId"] as? String)
            let redis = try testRedisClient()
            defer { redis.shutdown() }
            let holder = try #require(try await redis.xpending(fixture.stream, group: "chat-workers").first?.consumer)
            // The reservation's id is in the job's queue entry only; clients see the job id.
            let entry = try #require(try await redis.xrange(fixture.stream).first { $0.fields["jobId"] == jobID })
            let payload = try JSONDecoder().decode(InferenceJob.self, from: Data((entry.fields["payload"] ?? "").utf8))
            let reservationID = try #require(payload.reservationId)
            #expect(reservationID != jobID)
            try #require(fixture.workers[holder] != nil)
            fixture.workers[holder]!.signal(SIGKILL)
            let after = try await sse.collect { $0.event == "complete" || $0.event == "error" }
            #expect(after.contains { $0.event == "reset" })
            let resetAt = try #require(after.firstIndex { $0.event == "reset" })
            let rerun = Array(after[resetAt...])
            #expect(rerun.filter { $0.event == "chunk" }.compactMap { $0.json["index"] as? Int } == Array(0..<30))
            let complete = try #require(after.last)
            #expect(complete.event == "complete")
            #expect(complete.json["content"] as? String == chunkText(rerun))
            let stored = try await fixture.messages(sessionID, token: token)
            #expect(stored.filter { $0["role"] as? String == "assistant" }.count == 1)
            #expect(stored.last?["content"] as? String == chunkText(rerun))
            let ledger = Accounting.client()
            let again = try await ledger.finalize(
                reservationID: reservationID, modelID: ModelCatalog.builtIn.defaultModelID, inputTokens: 0, outputTokens: 0, success: true,
                token: fixture.token(user)
            )
            #expect(again.refund == 0 || again.creditsUsed == (complete.json["creditsCharged"] as? Double ?? -1))
            // What the client was shown settles nothing: there is no reservation by that id.
            let byJobID = try await ledger.finalize(
                reservationID: jobID, modelID: ModelCatalog.builtIn.defaultModelID, inputTokens: 0, outputTokens: 0, success: true, token: fixture.token(user)
            )
            #expect(byJobID.creditsUsed == 0 && byJobID.refund == 0)
        }
    }

    @Test("a worker SIGSTOPped past the visibility timeout and SIGCONTed: one consistent reply, acked once, the session free, billed as stored", .timeLimit(.minutes(2)))
    func workerStalledAndResumed() async throws {
        try await withPipeline { fixture in
            let (user, token, sessionID) = try await fixture.session()
            let sse = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/stream"), headers: ["Authorization": "Bearer \(token)"],
                json: ["message": "Stall here [[tokens:40]] [[tps:10]]"]
            )
            let before = try await sse.collect { $0.event == "chunk" && ($0.json["index"] as? Int) == 4 }
            let jobID = try #require(before.first?.json["jobId"] as? String)
            let redis = try testRedisClient()
            defer { redis.shutdown() }
            let holder = try #require(try await redis.xpending(fixture.stream, group: "chat-workers").first?.consumer)
            let entry = try #require(try await redis.xrange(fixture.stream).first { $0.fields["jobId"] == jobID })
            let payload = try JSONDecoder().decode(InferenceJob.self, from: Data((entry.fields["payload"] ?? "").utf8))
            let stalled = try #require(fixture.workers[holder])
            stalled.signal(SIGSTOP)
            // Another worker takes the job over; once the client sees the re-run start, the stalled one resumes.
            let takeover = try await sse.collect { $0.event == "reset" || $0.event == "complete" || $0.event == "error" }
            #expect(takeover.last?.event == "reset")
            stalled.signal(SIGCONT)
            let after = try await sse.collect { $0.event == "complete" || $0.event == "error" }
            let all = before + takeover + after
            let resetAt = try #require(all.lastIndex { $0.event == "reset" })
            let rerun = Array(all[resetAt...])
            let complete = try #require(all.last)
            #expect(complete.event == "complete")
            #expect(rerun.filter { $0.event == "chunk" }.compactMap { $0.json["index"] as? Int } == Array(0..<40))
            #expect(complete.json["content"] as? String == chunkText(rerun))
            let stored = try await fixture.messages(sessionID, token: token)
            #expect(stored.filter { $0["role"] as? String == "assistant" }.map { $0["content"] as? String } == [chunkText(rerun)])
            // The entry was acknowledged by the job's owner, once: nothing pending, nothing dead-lettered.
            try await expectEventually { try await redis.xpendingCount(fixture.stream, group: "chat-workers") == 0 }
            #expect(try await redis.xlen(fixture.stream + ":dead") == 0)
            // The session is free: the next message starts at once.
            let next = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/stream"), headers: ["Authorization": "Bearer \(token)"], json: ["message": "Again [[tokens:2]]"]
            )
            #expect(try await next.collect { $0.event == "complete" || $0.event == "error" }.last?.event == "complete")
            // Billed as stored: the settlement stands with the reply's counts.
            let again = try await Accounting.client().finalize(
                reservationID: try #require(payload.reservationId), modelID: ModelCatalog.builtIn.defaultModelID, inputTokens: 0, outputTokens: 0, success: true,
                token: fixture.token(user)
            )
            #expect(again.creditsUsed == (complete.json["creditsCharged"] as? Double ?? -1))
            #expect(complete.json["outputTokens"] as? Int == 40)
        }
    }

    @Test("a worker SIGKILLed mid-reply, ten times: each reply complete, stored once, billed once; the time from kill to reset is reported", .timeLimit(.minutes(5)))
    func workerKilledTenTimes() async throws {
        try await withPipeline(visibilityMilliseconds: 5_000) { fixture in
            let (user, token, sessionID) = try await fixture.session(credits: 100_000)
            let redis = try testRedisClient()
            defer { redis.shutdown() }
            var delays: [Double] = []
            for round in 0..<10 {
                let sse = try await SSEConnection.open(
                    fixture.url("/api/chat/sessions/\(sessionID)/stream"), headers: ["Authorization": "Bearer \(token)"],
                    json: ["message": "Round \(round) [[tokens:30]] [[tps:20]]"]
                )
                let before = try await sse.collect { $0.event == "chunk" && ($0.json["index"] as? Int) == 4 }
                let jobID = try #require(before.first?.json["jobId"] as? String)
                let entry = try #require(try await redis.xrange(fixture.stream).first { $0.fields["jobId"] == jobID })
                let payload = try JSONDecoder().decode(InferenceJob.self, from: Data((entry.fields["payload"] ?? "").utf8))
                let holder = try #require(try await redis.xpending(fixture.stream, group: "chat-workers").first { $0.id == entry.id }?.consumer)
                let clock = ContinuousClock()
                let killed = clock.now
                try #require(fixture.workers[holder] != nil)
                fixture.workers[holder]!.signal(SIGKILL)
                let untilReset = try await sse.collect { $0.event == "reset" || $0.event == "complete" || $0.event == "error" }
                let (seconds, attoseconds) = (clock.now - killed).components
                delays.append(Double(seconds) * 1_000 + Double(attoseconds) / 1e15)
                #expect(untilReset.last?.event == "reset")
                try fixture.startWorker("r\(round)-\(UUID().uuidString.prefix(6))")
                let after = try await sse.collect { $0.event == "complete" || $0.event == "error" }
                let rerun = (untilReset.suffix(1) + after).filter { $0.event == "chunk" }
                let complete = try #require(after.last)
                #expect(complete.event == "complete")
                #expect(rerun.compactMap { $0.json["index"] as? Int } == Array(0..<30))
                #expect(complete.json["content"] as? String == rerun.compactMap { $0.json["content"] as? String }.joined())
                let again = try await Accounting.client().finalize(
                    reservationID: try #require(payload.reservationId), modelID: ModelCatalog.builtIn.defaultModelID, inputTokens: 0, outputTokens: 0, success: true,
                    token: fixture.token(user)
                )
                #expect(again.creditsUsed == (complete.json["creditsCharged"] as? Double ?? -1))
            }
            let stored = try await fixture.messages(sessionID, token: token)
            #expect(stored.filter { $0["role"] as? String == "assistant" }.count == 10)
            #expect(stored.filter { $0["role"] as? String == "user" }.count == 10)
            let sorted = delays.sorted()
            let report = "kill → reset over 10 rounds (JOB_VISIBILITY_TIMEOUT_MS=5000): p50 \(Int(sorted[4])) ms, p90 \(Int(sorted[8])) ms, max \(Int(sorted[9])) ms"
            print(report)
            try? report.write(toFile: (ProcessInfo.processInfo.environment["TEST_REPORT_DIR"] ?? NSTemporaryDirectory()) + "/kill-to-reset.txt", atomically: true, encoding: .utf8)
        }
    }

    @Test("requester disconnect: the reply is still persisted; a supervisor observing sees the same chunks; endusers may not observe")
    func disconnectAndObserve() async throws {
        try await withPipeline { fixture in
            let (_, token, sessionID) = try await fixture.session()
            let observer = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/observe", api: 1), method: .GET, headers: ["Authorization": "Bearer \(fixture.token("supervisor1", role: .supervisor))"]
            )
            #expect(observer.status == 200)
            #expect(try await observer.next()?.event == "observer")
            let denied = try await SSEConnection.open(fixture.url("/api/chat/sessions/\(sessionID)/observe"), method: .GET, headers: ["Authorization": "Bearer \(token)"])
            #expect(denied.status == 403)
            let requester = try await SSEConnection.open(
                fixture.url("/api/chat/sessions/\(sessionID)/stream"), headers: ["Authorization": "Bearer \(token)"], json: ["message": "Watch me [[tokens:12]] [[tps:40]]"]
            )
            _ = try await requester.collect { $0.event == "chunk" && ($0.json["index"] as? Int) == 1 }
            _ = requester  // the requester goes away after two chunks
            let observed = try await observer.collect { $0.event == "complete" }
            #expect(observed.filter { $0.event == "chunk" }.count == 12)
            try await expectEventually(.seconds(15)) {
                (try? await fixture.messages(sessionID, token: token))?.last?["content"] as? String == chunkText(observed)
            }
            let updated = try await HTTPProbe.json(
                .POST, fixture.url("/api/chat/sessions/\(sessionID)/update-stream"), token: token,
                body: ["completeResponse": chunkText(observed), "streamingSessionId": observed.last?.json["jobId"] as? String ?? "", "tokensUsed": 1]
            )
            #expect(updated.status == 200)
            #expect(updated.body["message"] as? String == "Session updated")
        }
    }
}

/// Requests for direct emulator calls.
enum GenerationRequestFixture {
    static func single(_ text: String) -> GenerationRequest {
        GenerationRequest(turns: [ConversationTurn(role: .user, text: text)], maxTokens: 1_024)
    }
}

extension Accounting {
    /// A client of the accounting stand-in `make test` started.
    static func client() -> AccountingClient {
        AccountingClient(baseURL: TestEnvironment.accountingURL, httpClient: HTTPClient.shared, serviceCredential: TestEnvironment.serviceCredential)
    }
}

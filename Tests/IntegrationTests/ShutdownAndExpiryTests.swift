import AsyncHTTPClient
import ChatCore
import Foundation
import Testing

/// Streams end when they must: all of them when chat-api stops (within its grace period, so clients resume on
/// another replica), and an observer's when its token expires.
@Suite("streams end on shutdown and on token expiry", .serialized)
struct ShutdownAndExpiryTests {
    static let verifier = try! AccessTokenVerifier(secret: APIFixture.secret)

    @Test("SIGTERM with a reply stream, an observer and a waiting message on a job no worker runs: all end and chat-api exits promptly", .timeLimit(.minutes(2)))
    func shutdownEndsEveryStream() async throws {
        // The worker reads another jobs stream: the job waits in the queue for ever.
        let pair = try ServicePair(workerEnvironment: ["JOB_STREAM": uniqueKey("elsewhere")])
        defer { pair.kill() }
        try await pair.ready()
        let user = "stop-\(UUID().uuidString.prefix(8))"
        try await Accounting.fund(user, credits: 1_000, accountingURL: TestEnvironment.accountingURL, verifier: Self.verifier)
        let token = Self.verifier.sign(userID: user, role: .enduser, lifetime: 600)
        let auth = ["Authorization": "Bearer \(token)"]
        let created = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "stopping"])
        let sessionID = try #require(created.body["sessionId"] as? String)
        let other = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "waiting"])
        let otherID = try #require(other.body["sessionId"] as? String)

        let reply = try await SSEConnection.open(pair.apiURL + "/api/chat/sessions/\(sessionID)/stream", headers: auth, json: ["message": "hello"])
        #expect(reply.status == 200)
        let supervisor = Self.verifier.sign(userID: "supervisor1", role: .supervisor, lifetime: 600)
        let observer = try await SSEConnection.open(
            pair.apiURL + "/api/chat/sessions/\(sessionID)/observe", method: .GET, headers: ["Authorization": "Bearer \(supervisor)"]
        )
        #expect(try await observer.next()?.event == "observer")
        let waiting = Task { () -> (status: Int, code: String?, jobID: String?) in
            let answer = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions/\(otherID)/messages", token: token, body: ["message": "hi"])
            return (answer.status, answer.body["code"] as? String, answer.body["jobId"] as? String)
        }
        // The waiting request is registered once its job is queued.
        try await expectEventually(.seconds(10)) {
            let job = try await HTTPProbe.json(.GET, pair.apiURL + "/api/chat/sessions/\(otherID)", token: token)
            return (job.body["messages"] as? [Any])?.isEmpty == false || job.body["activeJobId"] != nil
        }

        let clock = ContinuousClock()
        let stopped = clock.now
        pair.api.signal(SIGTERM)
        // Each stream ends without a last event (the client resumes elsewhere with Last-Event-ID).
        var replyEvents: [SSEEvent] = []
        while let event = try await reply.next() { replyEvents.append(event) }
        #expect(!replyEvents.contains { $0.event == "complete" })
        while try await observer.next() != nil {}
        let answer = try await waiting.value
        #expect(answer.status == 503)
        #expect(answer.code == "SHUTTING_DOWN")
        #expect(answer.jobID != nil)
        let (status, output) = try await pair.api.waitForExit(limit: .seconds(20))
        let took = clock.now - stopped
        #expect(status == 0, "\(output.suffix(2_000))")
        #expect(took < .seconds(10), "chat-api took \(took) to stop")
        pair.worker.signal(SIGTERM)
        _ = try await pair.worker.waitForExit()
    }

    @Test("an observer's stream ends with TOKEN_EXPIRED when its token expires, not at its next reconnect", .timeLimit(.minutes(1)))
    func observerEndsAtTokenExpiry() async throws {
        try await APIProcess.withPair { pair in
            let user = "expiry-\(UUID().uuidString.prefix(8))"
            try await Accounting.fund(user, credits: 1_000, accountingURL: TestEnvironment.accountingURL, verifier: Self.verifier)
            let token = Self.verifier.sign(userID: user, role: .enduser, lifetime: 600)
            let created = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "watched"])
            let sessionID = try #require(created.body["sessionId"] as? String)
            let shortLived = Self.verifier.sign(userID: "supervisor1", role: .supervisor, lifetime: 3)
            let clock = ContinuousClock()
            let opened = clock.now
            let observer = try await SSEConnection.open(
                pair.apiURL + "/api/chat/sessions/\(sessionID)/observe", method: .GET, headers: ["Authorization": "Bearer \(shortLived)"]
            )
            #expect(try await observer.next()?.event == "observer")
            var last: SSEEvent?
            while let event = try await observer.next() { last = event }
            let lasted = clock.now - opened
            #expect(last?.event == "error")
            #expect(last?.json["code"] as? String == "TOKEN_EXPIRED")
            #expect(lasted > .seconds(1) && lasted < .seconds(6), "the stream lasted \(lasted) for a token of 3 s")
        }
    }
}

import ChatCore
import Foundation
import Testing

@Suite("JSON logs of chat-api and chat-worker, as processes", .serialized, .timeLimit(.minutes(2)))
struct LogsTests {
    /// Every line of `output` as a JSON object; records an issue for any line that is not one.
    func lines(_ output: String, _ process: String) -> [[String: Any]] {
        output.split(separator: "\n").compactMap { line in
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                Issue.record("\(process) wrote a line that is not a JSON object: \(line)")
                return nil
            }
            for key in ["time", "level", "service", "logger", "message"] where object[key] as? String == nil {
                Issue.record("\(process)'s line has no \(key): \(line)")
            }
            return object
        }
    }

    @Test("a request's line and its job's line share the request id and the trace id; no token or message text is logged")
    func requestAndJobShareIDs() async throws {
        let pair = try ServicePair(logLevel: "info")
        defer { pair.kill() }
        try await pair.ready()
        let verifier = try AccessTokenVerifier(secret: APIFixture.secret)
        let (user, token) = try await Accounting.fundedUser("l", verifier: verifier, lifetime: 300)
        let created = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "logs"])
        let sessionID = try #require(created.body["sessionId"] as? String)

        let requestID = "logs-\(UUID().uuidString.lowercased())"
        let traceID = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let secretWords = "tangerine-\(UUID().uuidString.prefix(8))"
        let sse = try await SSEConnection.open(
            pair.apiURL + "/api/chat/sessions/\(sessionID)/stream",
            headers: ["Authorization": "Bearer \(token)", "X-Request-Id": requestID, "traceparent": "00-\(traceID)-00f067aa0ba902b7-01"],
            json: ["message": "Please keep \(secretWords) private [[tokens:3]]"]
        )
        #expect(sse.status == 200)
        let events = try await sse.collect { $0.event == "complete" || $0.event == "error" }
        let jobID = try #require(events.last?.json["jobId"] as? String)
        #expect(events.last?.event == "complete")
        // The worker logs the job's end once it is recorded, just after `complete`: wait for the job's record.
        try await expectEventually {
            (try? await HTTPProbe.json(.GET, pair.apiURL + "/api/jobs/\(jobID)", token: token).body["status"] as? String) == "completed"
        }
        // The worker writes the job's line right after recording its end, before SIGTERM's drain lets it exit.
        let (apiOutput, workerOutput) = try await pair.stop()

        let apiLines = lines(apiOutput, "chat-api")
        let workerLines = lines(workerOutput, "chat-worker")
        let request = apiLines.first { $0["message"] as? String == "request" && $0["requestId"] as? String == requestID }
        #expect(request?["traceId"] as? String == traceID)
        #expect(request?["route"] as? String == "/api/chat/sessions/{id}/stream")
        #expect(request?["status"] as? String == "200")
        #expect(request?["userId"] as? String == user)
        #expect(request?["service"] as? String == "chat-api")
        let job = workerLines.first { $0["message"] as? String == "job finished" && $0["jobId"] as? String == jobID }
        #expect(job?["requestId"] as? String == requestID)
        #expect(job?["traceId"] as? String == traceID)
        #expect(job?["sessionId"] as? String == sessionID)
        #expect(job?["userId"] as? String == user)
        #expect(job?["outcome"] as? String == "completed")
        #expect(job?["service"] as? String == "chat-worker")
        for (process, output) in [("chat-api", apiOutput), ("chat-worker", workerOutput)] {
            #expect(!output.contains(token), "\(process) logged the bearer token")
            #expect(!output.contains(String(token.split(separator: ".")[2])), "\(process) logged the token's signature")
            #expect(!output.contains(secretWords), "\(process) logged the message's text")
            #expect(!output.contains(APIFixture.secret), "\(process) logged the JWT secret")
        }
    }

    @Test("a malformed traceparent is not taken: the request gets a trace of its own")
    func malformedTraceparent() async throws {
        let pair = try ServicePair(logLevel: "info")
        defer { pair.kill() }
        try await pair.ready()
        let requestID = "bad-trace-\(UUID().uuidString.lowercased())"
        let answer = try await HTTPProbe.json(
            .GET, pair.apiURL + "/api/models",
            headers: ["X-Request-Id": requestID, "traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"]
        )
        #expect(answer.status == 401)
        let (apiOutput, _) = try await pair.stop()
        let line = lines(apiOutput, "chat-api").first { $0["requestId"] as? String == requestID && $0["message"] as? String == "request" }
        let traceID = try #require(line?["traceId"] as? String)
        #expect(traceID.count == 32 && traceID != String(repeating: "0", count: 32))
    }
}

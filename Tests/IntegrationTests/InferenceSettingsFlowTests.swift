import ChatCore
import Foundation
import Testing

/// A message's sampling settings through the whole service: validated by chat-api, carried by the job, and
/// sent by the worker to the model (the emulator's `[[echo-settings]]` replies with what it received).
@Suite("sampling settings from the request to the model", .serialized)
struct InferenceSettingsFlowTests {
    static let verifier = try! AccessTokenVerifier(secret: APIFixture.secret)

    @Test("temperature, topP, maxTokens and stop sequences reach the model through Converse; out-of-range values are 400 naming the field", .timeLimit(.minutes(2)))
    func settingsReachTheModel() async throws {
        try await APIProcess.withPair { pair in
            let token = try await Accounting.fundedUser("settings", verifier: Self.verifier).token
            let created = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "settings"])
            let sessionID = try #require(created.body["sessionId"] as? String)
            let messages = pair.apiURL + "/api/chat/sessions/\(sessionID)/messages"

            let answer = try await HTTPProbe.json(
                .POST, messages, token: token,
                body: ["message": "Say what you got [[echo-settings]]", "temperature": 0.25, "topP": 0.5, "maxTokens": 40, "stopSequences": ["END", "STOP"]]
            )
            #expect(answer.status == 200, "\(answer.body)")
            let reply = try #require(answer.body["reply"] as? [String: Any])
            #expect(reply["content"] as? String == "temperature=0.25 topP=0.5 stop=END stop=STOP maxTokens=40")

            // Without settings: the model's defaults and the service's longest reply.
            let plain = try await HTTPProbe.json(.POST, messages, token: token, body: ["message": "And now [[echo-settings]]"])
            #expect((plain.body["reply"] as? [String: Any])?["content"] as? String == "maxTokens=1024")

            for (body, field) in [
                (["message": "hi", "temperature": 1.5] as [String: Any], "temperature"), (["message": "hi", "topP": -1], "topP"),
                (["message": "hi", "maxTokens": 5_000], "maxTokens"), (["message": "hi", "stopSequences": ["a", "b", "c", "d", "e"]], "stopSequences"),
            ] {
                let refused = try await HTTPProbe.json(.POST, messages, token: token, body: body)
                #expect(refused.status == 400, "\(body)")
                #expect(refused.body["code"] as? String == "VALIDATION_ERROR")
                #expect((refused.body["message"] as? String)?.hasPrefix(field) == true, "\(refused.body)")
            }
            // The GET stream form (EventSource) takes the numeric settings from its query.
            let auth = ["Authorization": "Bearer \(token)"]
            let query = "message=Over+GET+%5B%5Becho-settings%5D%5D&temperature=0.1&maxTokens=30"
            let stream = try await SSEConnection.open(pair.apiURL + "/api/chat/sessions/\(sessionID)/stream?\(query)", method: .GET, headers: auth)
            let events = try await stream.collect { $0.event == "complete" || $0.event == "error" }
            #expect(events.last?.json["content"] as? String == "temperature=0.1 maxTokens=30")
            let badQuery = try await HTTPProbe.json(.GET, pair.apiURL + "/api/chat/sessions/\(sessionID)/stream?message=hi&temperature=warm", token: token)
            #expect(badQuery.status == 400 && (badQuery.body["message"] as? String) == "temperature must be a number")

            // A refused message left nothing running: the session takes the next one.
            let after = try await HTTPProbe.json(.POST, messages, token: token, body: ["message": "Still here [[tokens:3]]", "maxTokens": 2])
            #expect(after.status == 200)
            #expect(((after.body["reply"] as? [String: Any])?["content"] as? String)?.split(separator: " ").count == 2)
        }
    }

    @Test("a session's system prompt is stored, shown, survives the cache, and reaches the model before every turn", .timeLimit(.minutes(2)))
    func systemPromptReachesTheModel() async throws {
        try await APIProcess.withPair { pair in
            let token = try await Accounting.fundedUser("system", verifier: Self.verifier).token
            let created = try await HTTPProbe.json(
                .POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "system", "systemPrompt": "  You answer as a pirate.  "]
            )
            #expect(created.status == 201)
            #expect(created.body["systemPrompt"] as? String == "You answer as a pirate.")
            let sessionID = try #require(created.body["sessionId"] as? String)
            let messages = pair.apiURL + "/api/chat/sessions/\(sessionID)/messages"
            for turn in 1...2 {
                let answer = try await HTTPProbe.json(.POST, messages, token: token, body: ["message": "Turn \(turn) [[echo-settings]]"])
                #expect(answer.status == 200, "\(answer.body)")
                #expect((answer.body["reply"] as? [String: Any])?["content"] as? String == "system=You_answer_as_a_pirate. maxTokens=1024")
            }
            // Read back from MongoDB (the GET) and again after the Redis cache lost the session.
            let read = try await HTTPProbe.json(.GET, pair.apiURL + "/api/chat/sessions/\(sessionID)", token: token)
            #expect(read.body["systemPrompt"] as? String == "You answer as a pirate.")
            let redis = try testRedisClient()
            defer { redis.shutdown() }
            _ = try await redis.send("DEL", "chat:session:{\(sessionID)}", "chat:session:{\(sessionID)}:history")
            let refilled = try await HTTPProbe.json(.POST, messages, token: token, body: ["message": "Turn 3 [[echo-settings]]"])
            #expect((refilled.body["reply"] as? [String: Any])?["content"] as? String == "system=You_answer_as_a_pirate. maxTokens=1024")
            // An entry as a process of the version before wrote it (no system prompt field): the prompt is not lost.
            #expect(try await redis.send("HDEL", "chat:session:{\(sessionID)}", "systemPrompt").int == 1)
            let older = try await HTTPProbe.json(.POST, messages, token: token, body: ["message": "Turn 4 [[echo-settings]]"])
            #expect((older.body["reply"] as? [String: Any])?["content"] as? String == "system=You_answer_as_a_pirate. maxTokens=1024", "\(older.body)")

            // A session without one sends none; a prompt of the wrong type or too long is 400 naming the field.
            let plain = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "plain", "systemPrompt": "   "])
            #expect(plain.status == 201 && plain.body["systemPrompt"] == nil)
            for body in [["title": "t", "systemPrompt": 5] as [String: Any], ["title": "t", "systemPrompt": String(repeating: "a", count: 32_001)]] {
                let refused = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: body)
                #expect(refused.status == 400)
                #expect((refused.body["message"] as? String)?.hasPrefix("systemPrompt") == true, "\(refused.body)")
            }
        }
    }
}

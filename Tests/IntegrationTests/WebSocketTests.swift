import ChatCore
import Foundation
import HTTPTypes
import Testing
import WSClient

/// The event streams over WebSocket, against chat-api and chat-worker as processes: the same events, ids and
/// ends as the SSE streams, the same authorization, refusals before the upgrade with their HTTP status, and after
/// it as an `error` message and a close code.
@Suite("event streams over WebSocket", .serialized)
struct WebSocketTests {
    static let verifier = try! AccessTokenVerifier(secret: APIFixture.secret)

    static func socketURL(_ pair: ServicePair, _ path: String) -> String {
        "ws://127.0.0.1:\(pair.apiPort)\(path)"
    }

    @Test("a supervisor observes over WebSocket what the requester's SSE stream gets, event for event; the requester streams and resumes over one too", .timeLimit(.minutes(2)))
    func observeAndStream() async throws {
        try await APIProcess.withPair { pair in
            let user = "ws-\(UUID().uuidString.prefix(8))"
            try await Accounting.fund(user, credits: 1_000, accountingURL: TestEnvironment.accountingURL, verifier: Self.verifier)
            let token = Self.verifier.sign(userID: user, role: .enduser, lifetime: 600)
            let created = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "sockets"])
            let sessionID = try #require(created.body["sessionId"] as? String)
            let supervisor = Self.verifier.sign(userID: "supervisor1", role: .supervisor, lifetime: 600)

            // The observer (token in the query, as a browser sends it) is in place before the reply starts.
            let observer = SocketRecorder(Self.socketURL(pair, "/api/chat/sessions/\(sessionID)/observe?access_token=\(supervisor)"))
            defer { observer.cancel() }
            try await expectEventually(.seconds(10)) { observer.messages.first?.event == "observer" || !observer.unparsed.isEmpty }
            #expect(observer.unparsed.isEmpty)
            let greeting = try #require(observer.messages.first)
            #expect(greeting.json["sessionId"] as? String == sessionID)
            #expect(greeting.json["observerId"] as? String == "supervisor1")
            #expect(greeting.id == nil)

            let reply = try await SSEConnection.open(
                pair.apiURL + "/api/chat/sessions/\(sessionID)/stream", headers: ["Authorization": "Bearer \(token)"], json: ["message": "hello over there"]
            )
            let sse = try await reply.collect { $0.event == "complete" || $0.event == "error" }
            #expect(sse.last?.event == "complete")
            #expect(sse.filter { $0.event == "chunk" }.count >= 2)
            try await expectEventually(.seconds(10)) { observer.messages.contains { $0.event == "complete" } }
            // Event for event: the same ids, types and data.
            let observed = observer.messages.dropFirst()
            #expect(observed.map(\.id) == sse.map(\.id))
            #expect(observed.map(\.event) == sse.map(\.event))
            #expect(observed.map { $0.json["content"] as? String } == sse.map { $0.json["content"] as? String })
            #expect(observed.last?.json["outputTokens"] as? Int == sse.last?.json["outputTokens"] as? Int)
            #expect(observer.unparsed.isEmpty)

            // The requester's own stream over a socket, with the token in a header: it ends with close 1000
            // after `complete`.
            let own = SocketRecorder(
                // A browser's URLSearchParams writes a space as `+`.
                Self.socketURL(pair, "/api/chat/sessions/\(sessionID)/stream?message=again+please%21"),
                headers: [.authorization: "Bearer \(token)"]
            )
            let ownClose = try await own.closed()
            #expect(ownClose?.closeCode == .normalClosure)
            let events = own.messages
            #expect(events.first?.event == "model")
            #expect(events.last?.event == "complete")
            let chunks = events.filter { $0.event == "chunk" }
            #expect(chunks.count >= 2)
            #expect(events.allSatisfy { $0.id != nil })

            // Resuming after the first chunk gives the rest, the same ids.
            let first = try #require(chunks.first?.id)
            let resumed = SocketRecorder(
                Self.socketURL(pair, "/api/chat/sessions/\(sessionID)/stream?lastEventId=\(first)&access_token=\(token)")
            )
            #expect(try await resumed.closed()?.closeCode == .normalClosure)
            let rest = try #require(events.firstIndex { $0.id == first })
            #expect(resumed.messages.map(\.id) == events[(rest + 1)...].map(\.id))
            // After the last event there is nothing to resume: closed at once, with nothing sent.
            let done = SocketRecorder(
                Self.socketURL(pair, "/api/chat/sessions/\(sessionID)/stream?lastEventId=\(events.last!.id!)&access_token=\(token)")
            )
            #expect(try await done.closed()?.closeCode == .normalClosure)
            #expect(done.messages.isEmpty)
            let stored = try await HTTPProbe.json(.GET, pair.apiURL + "/api/chat/sessions/\(sessionID)", token: token)
            let texts = (stored.body["messages"] as? [[String: Any]] ?? []).compactMap { $0["content"] as? String }
            #expect(texts.contains("again please!"), "\(texts)")

            // An observer resumes too: after the first chunk of the first reply, the rest of it and the second.
            let firstChunk = try #require(sse.first { $0.event == "chunk" }?.id)
            let resumedObserver = SocketRecorder(
                Self.socketURL(pair, "/api/chat/sessions/\(sessionID)/observe?lastEventId=\(firstChunk)&access_token=\(supervisor)")
            )
            defer { resumedObserver.cancel() }
            let expected = Array(sse.drop { $0.id != firstChunk }.dropFirst().map(\.id)) + events.map(\.id)
            try await expectEventually(.seconds(10)) { resumedObserver.messages.count >= expected.count + 1 }
            #expect(resumedObserver.messages.first?.event == "observer")
            #expect(resumedObserver.messages.dropFirst().map(\.id) == expected)
        }
    }

    @Test("refusals after the upgrade: an error message with the code and status, then close 4000 + status (401, 403, 404, 400, 402); a page of an origin not allowed is refused the handshake", .timeLimit(.minutes(2)))
    func refusals() async throws {
        let pair = try ServicePair(apiEnvironment: ["CORS_ALLOWED_ORIGINS": "http://allowed.example"])
        defer { pair.kill() }
        try await pair.ready()
        let user = "wsr-\(UUID().uuidString.prefix(8))"
        // Enough to open a session, too little for a reply.
        try await Accounting.fund(user, credits: 1, accountingURL: TestEnvironment.accountingURL, verifier: Self.verifier)
        let token = Self.verifier.sign(userID: user, role: .enduser, lifetime: 600)
        let created = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "refused"])
        let sessionID = try #require(created.body["sessionId"] as? String)
        let observe = "/api/chat/sessions/\(sessionID)/observe"
        let supervisor = Self.verifier.sign(userID: "supervisor1", role: .supervisor, lifetime: 600)
        let other = Self.verifier.sign(userID: "someone-else", role: .enduser, lifetime: 600)

        let refused: [(path: String, code: String, status: Int)] = [
            (observe + "?access_token=not-a-token", "INVALID_TOKEN", 401),
            (observe, "INVALID_TOKEN", 401),
            (observe + "?access_token=\(token)", "FORBIDDEN", 403),
            ("/api/chat/sessions/000000000000000000000000/observe?access_token=\(supervisor)", "SESSION_NOT_FOUND", 404),
            ("/api/chat/sessions/\(sessionID)/stream?access_token=\(token)", "VALIDATION_ERROR", 400),
            ("/api/chat/sessions/\(sessionID)/stream?lastEventId=nonsense&access_token=\(token)", "INVALID_LAST_EVENT_ID", 400),
            // An observer resumes only after an event of the session's stream.
            (observe + "?lastEventId=99999999999999-0&access_token=\(supervisor)", "EVENT_NOT_FOUND", 404),
            // Another user's session is not found, as over HTTP.
            ("/api/chat/sessions/\(sessionID)/stream?message=hi&access_token=\(other)", "SESSION_NOT_FOUND", 404),
            // No credits: refused when the generation would start.
            ("/api/chat/sessions/\(sessionID)/stream?message=hi&access_token=\(token)", "INSUFFICIENT_CREDITS", 402),
        ]
        for (path, code, status) in refused {
            let answer = try await SocketUpgrade.exchange(port: pair.apiPort, path)
            #expect(answer.status == 101, "\(path)")
            #expect(answer.close == UInt16(4000 + status), "\(path): closed with \(String(describing: answer.close))")
            #expect(answer.messages.map(\.event) == ["error"], "\(path)")
            #expect(answer.messages.first?.json["code"] as? String == code, "\(path)")
            #expect(answer.messages.first?.json["status"] as? Int == status, "\(path)")
        }

        // A page of an origin not allowed is refused the handshake; an allowed one and the API's own are not.
        #expect(try await SocketUpgrade.refusal(port: pair.apiPort, observe + "?access_token=\(supervisor)", headers: ["Origin": "http://evil.example"]) == 400)
        #expect(try await SocketUpgrade.refusal(port: pair.apiPort, observe + "?access_token=\(supervisor)", headers: ["Origin": "null"]) == 400)
        #expect(try await SocketUpgrade.refusal(port: pair.apiPort, observe + "?access_token=\(supervisor)") == 101)
        for origin in ["http://allowed.example", "http://127.0.0.1:\(pair.apiPort)"] {
            let allowed = SocketRecorder(Self.socketURL(pair, observe + "?access_token=\(supervisor)"), headers: [.origin: origin])
            try await expectEventually(.seconds(10)) { allowed.messages.first?.event == "observer" }
            allowed.cancel()
        }
        // A request that asks for an upgrade where there is no socket is refused too.
        #expect(try await SocketUpgrade.refusal(port: pair.apiPort, "/api/chat/sessions?access_token=\(token)") == 400)
        _ = try await pair.stop()
    }

    @Test("an idle socket is kept alive by pings past the HTTP idle timeout, then ends with TOKEN_EXPIRED and close 4401 when its token does", .timeLimit(.minutes(1)))
    func keepAliveAndExpiry() async throws {
        let pair = try ServicePair(apiEnvironment: ["HTTP_IDLE_TIMEOUT_MS": "1000", "SSE_HEARTBEAT_MS": "300"])
        defer { pair.kill() }
        try await pair.ready()
        let user = "wse-\(UUID().uuidString.prefix(8))"
        try await Accounting.fund(user, credits: 100, accountingURL: TestEnvironment.accountingURL, verifier: Self.verifier)
        let token = Self.verifier.sign(userID: user, role: .enduser, lifetime: 600)
        let created = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "quiet"])
        let sessionID = try #require(created.body["sessionId"] as? String)
        let shortLived = Self.verifier.sign(userID: "supervisor1", role: .supervisor, lifetime: 4)
        let clock = ContinuousClock()
        let opened = clock.now
        let observer = SocketRecorder(Self.socketURL(pair, "/api/chat/sessions/\(sessionID)/observe?access_token=\(shortLived)"))
        let close = try await observer.closed()
        let lasted = clock.now - opened
        #expect(close?.closeCode == .unknown(4401))
        #expect(observer.messages.map(\.event) == ["observer", "error"])
        #expect(observer.messages.last?.json["code"] as? String == "TOKEN_EXPIRED")
        // Three idle timeouts and more without a message: the pings kept it open.
        #expect(lasted > .seconds(2.5) && lasted < .seconds(7), "the socket lasted \(lasted) for a token of 4 s")
        _ = try await pair.stop()
    }

    @Test("WEBSOCKETS_ENABLED=false: an upgrade is not taken; the same route answers as Server-Sent Events", .timeLimit(.minutes(1)))
    func webSocketsOff() async throws {
        let pair = try ServicePair(apiEnvironment: ["WEBSOCKETS_ENABLED": "false"])
        defer { pair.kill() }
        try await pair.ready()
        let token = try await Accounting.fundedUser("wsoff", credits: 100, verifier: Self.verifier).token
        let created = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "no sockets"])
        let sessionID = try #require(created.body["sessionId"] as? String)
        let supervisor = Self.verifier.sign(userID: "supervisor1", role: .supervisor, lifetime: 600)
        let path = "/api/chat/sessions/\(sessionID)/observe?access_token=\(supervisor)"
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(pair.apiPort)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        let answer = String(decoding: try await RawConnection.exchange(port: pair.apiPort, bytes: request, limit: .seconds(3)), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(300))")
        #expect(answer.lowercased().contains("content-type: text/event-stream"))
        #expect(answer.contains("event: observer"))
        _ = try await pair.stop()
    }

    @Test("SIGTERM closes every socket (1001 or 1000) and chat-api exits promptly, a connection that never sent a request notwithstanding", .timeLimit(.minutes(1)))
    func shutdownClosesSockets() async throws {
        let pair = try ServicePair()
        defer { pair.kill() }
        try await pair.ready()
        let user = "wss-\(UUID().uuidString.prefix(8))"
        try await Accounting.fund(user, credits: 100, accountingURL: TestEnvironment.accountingURL, verifier: Self.verifier)
        let token = Self.verifier.sign(userID: user, role: .enduser, lifetime: 600)
        let created = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: token, body: ["title": "stopping"])
        let sessionID = try #require(created.body["sessionId"] as? String)
        let supervisor = Self.verifier.sign(userID: "supervisor1", role: .supervisor, lifetime: 600)
        let observer = SocketRecorder(Self.socketURL(pair, "/api/chat/sessions/\(sessionID)/observe?access_token=\(supervisor)"))
        try await expectEventually(.seconds(10)) { observer.messages.first?.event == "observer" }
        // A connection that sent nothing (a browser's preconnect) does not hold the shutdown.
        let silent = Task { try await RawConnection.exchange(port: pair.apiPort, bytes: "", limit: .seconds(30)) }
        defer { silent.cancel() }
        let clock = ContinuousClock()
        let stopped = clock.now
        pair.api.signal(SIGTERM)
        let close = try await observer.closed()
        #expect(close?.closeCode == .goingAway || close?.closeCode == .normalClosure, "closed with \(String(describing: close))")
        let (status, output) = try await pair.api.waitForExit(limit: .seconds(20))
        #expect(status == 0, "\(output.suffix(2_000))")
        #expect(clock.now - stopped < .seconds(10))
        pair.worker.signal(SIGTERM)
        _ = try await pair.worker.waitForExit()
    }
}

import Accounting
import AsyncHTTPClient
import CORS
import ChatCore
import ChatStore
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import API
@testable import ChatState
@testable import Queue

/// chat-api's router, in process, over the real Redis and a fresh MongoDB database.
struct APIFixture {
    static let secret = "dev_access_secret_key_change_this_in_production"
    let store: MongoSessionStore
    let redis: RedisClient
    let verifier = try! AccessTokenVerifier(secret: secret)
    /// The routes the app serves, `METHOD /path/{param}`.
    var routes: [String] = []

    /// Runs `body` against the app, then drops the database and closes the clients.
    static func with(
        redis: RedisClient? = nil, mongoURI: String? = nil, rateLimits: RateLimitSettings = try! RateLimitSettings(environment: Environment(["RATE_LIMIT_ENABLED": "false"])),
        accountingURL: String = TestEnvironment.accountingURL, messageWait: Duration = .seconds(30), cors: CORSPolicy = try! CORSPolicy(parsing: ""),
        streamLimits: StreamLimits? = nil,
        _ body: @Sendable (APIFixture, any TestClientProtocol) async throws -> Void
    ) async throws {
        let store = try MongoSessionStore(
            configuration: MongoConfiguration(uri: mongoURI ?? MongoSessionStoreTests.uniqueDatabaseURI(), timeout: .seconds(1), threadCount: 2)
        )
        if mongoURI == nil { try await store.prepare() }
        let redis = try redis ?? testRedisClient()
        var fixture = APIFixture(store: store, redis: redis)
        var limiter = RateLimiter(redis: redis, settings: rateLimits, logger: Logger(label: "test.ratelimit"))
        limiter.keyPrefix = uniqueKey("ratelimit")
        let ledger = AccountingClient(baseURL: accountingURL, httpClient: HTTPClient.shared, timeout: .seconds(2), serviceCredential: TestEnvironment.serviceCredential)
        let events = SessionEvents(redis: redis)
        let cache = SessionCache(redis: redis)
        let hub = EventHub(redis: redis, events: events, configuration: EventHub.Configuration(heartbeatInterval: .seconds(1)))
        var dependencies = APIDependencies(
            redis: redis, store: store, verifier: fixture.verifier, healthTimeout: .seconds(5), rateLimiter: limiter, ledger: ledger,
            state: GenerationState(redis: redis, cache: cache, settlementsKey: uniqueKey("settlements"), openJobsKey: uniqueKey("open"), pendingTurnsKey: uniqueKey("turns")), cache: cache, queue: JobQueue<InferenceJob>(redis: redis),
            events: events, hub: hub, messageWait: messageWait, cors: cors
        )
        dependencies.streamLimits = streamLimits
        let table = buildRoutes(dependencies)
        fixture.routes = table.routes
        let served = fixture
        var app = Application(router: UnsentResponses(ExchangeRecorder(table.router)))
        app.addServices(hub)
        do {
            try await app.test(.router) { client in try await body(served, client) }
        } catch {
            try? await store.dropDatabase()
            try? await store.shutdown()
            redis.shutdown()
            throw error
        }
        if mongoURI == nil { try await store.dropDatabase() }
        try await store.shutdown()
        redis.shutdown()
    }

    /// `Authorization` for a fresh token of `user`.
    func auth(_ user: String, role: UserRole = .enduser) -> HTTPFields {
        [.authorization: "Bearer " + verifier.sign(userID: user, role: role, lifetime: 900), .contentType: "application/json"]
    }

    /// Gives `user` credits through the accounting stand-in, as an admin would.
    func fund(_ user: String, credits: Int = 1_000, accountingURL: String = TestEnvironment.accountingURL) async throws {
        try await Accounting.fund(user, credits: credits, accountingURL: accountingURL, verifier: verifier)
    }
}

/// Credits for test users, through the accounting stand-in's admin endpoint.
enum Accounting {
    static func fund(_ user: String, credits: Int, accountingURL: String, verifier: AccessTokenVerifier) async throws {
        var request = HTTPClientRequest(url: accountingURL + "/api/credits/allocate")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer " + verifier.sign(userID: "admin", role: .admin, lifetime: 300))
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"targetUserId":"\#(user)","credits":\#(credits),"expiryDays":30,"notes":"test"}"#))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 20)
        #expect(response.status == .created, "allocating credits to \(user) answered \(response.status)")
    }

    /// A new user (`prefix` and a random suffix) with `credits` allocated at `accountingURL`, and a token of theirs.
    static func fundedUser(
        _ prefix: String, role: UserRole = .enduser, credits: Int = 1_000, accountingURL: String = TestEnvironment.accountingURL,
        verifier: AccessTokenVerifier, lifetime: Int = 600
    ) async throws -> (id: String, token: String) {
        let user = "\(prefix)-\(UUID().uuidString.prefix(8))"
        try await fund(user, credits: credits, accountingURL: accountingURL, verifier: verifier)
        return (user, verifier.sign(userID: user, role: role, lifetime: lifetime))
    }
}

/// The response body as a JSON object; empty (so every expectation on it fails) when it is not one.
func json(_ response: TestResponse) -> [String: Any] {
    ((try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any]) ?? [:]
}

/// A JSON body.
func body(_ object: [String: Any]) -> ByteBuffer {
    ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))
}

@Suite("chat-api: health, authentication and sessions", .serialized)
struct SessionsAPITests {
    @Test("health and readiness report ok with Redis and MongoDB up, with a request id")
    func healthUp() async throws {
        try await APIFixture.with { _, client in
            try await client.execute(uri: "/api/health", method: .get) { response in
                #expect(response.status == .ok)
                let health = json(response)
                #expect(health["status"] as? String == "ok")
                #expect(health["service"] as? String == "chat-service")
                #expect(health["dependencies"] as? [String: String] == ["redis": "ok", "mongodb": "ok"])
                #expect(response.headers[.xRequestID]?.isEmpty == false)
            }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/livez", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/livez", method: .get, headers: [.xRequestID: "abc-123"]) { response in
                #expect(response.headers[.xRequestID] == "abc-123")
            }
        }
    }

    @Test("with Redis down, /readyz and /api/health answer 503 within the health timeout")
    func healthDown() async throws {
        let deadRedis = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: TestEnvironment.freePort(), connectTimeout: .milliseconds(300)))
        try await APIFixture.with(redis: deadRedis) { _, client in
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/api/health", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(json(response)["dependencies"] as? [String: String] == ["redis": "down", "mongodb": "ok"])
            }
            try await client.execute(uri: "/livez", method: .get) { #expect($0.status == .ok) }
        }
    }

    @Test("with MongoDB down, /readyz is 503 and session calls are 503 DATABASE_UNAVAILABLE within the timeout")
    func mongoDown() async throws {
        let deadMongo = "mongodb://127.0.0.1:\(TestEnvironment.freePort())/chat_down"
        try await APIFixture.with(mongoURI: deadMongo) { fixture, client in
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/api/health", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(json(response)["dependencies"] as? [String: String] == ["redis": "ok", "mongodb": "down"])
            }
            let clock = ContinuousClock()
            let start = clock.now
            try await client.execute(uri: "/api/chat/sessions", method: .get, headers: fixture.auth("user-down")) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(json(response)["code"] as? String == "DATABASE_UNAVAILABLE")
                #expect(json(response)["message"] as? String == "The database is unavailable")
            }
            // Bounded by the 1 s MongoDB timeout, with room for a busy machine: it never hangs.
            #expect(clock.now - start < .seconds(10))
        }
    }

    @Test("a missing, malformed or foreign token is 401 with the one message; the scheme word is case-insensitive")
    func authentication() async throws {
        try await APIFixture.with { fixture, client in
            let other = try AccessTokenVerifier(secret: "some_other_secret_that_is_long_enough_123").sign(userID: "u", role: .enduser, lifetime: 60)
            let expired = fixture.verifier.sign(userID: "u", role: .enduser, lifetime: -120)
            let good = fixture.verifier.sign(userID: "u", role: .enduser, lifetime: 60)
            let key = SymmetricKey(data: Array(APIFixture.secret.utf8))
            let now = Int(Date().timeIntervalSince1970)
            let claims: [String: Any] = ["sub": "u", "role": "enduser", "exp": now + 600]
            func forged(_ header: [String: Any], _ claims: [String: Any]) -> String { AccessTokenVerifier.sign(header: header, claims: claims, key: key) }
            let table: [(String, String)] = [
                ("alg none", forged(["alg": "none"], claims)),
                ("HS384", forged(["alg": "HS384"], claims)), ("HS512", forged(["alg": "HS512"], claims)), ("RS256", forged(["alg": "RS256"], claims)),
                ("wrong secret", other), ("expired past the leeway", expired),
                ("nbf in the future", forged(["alg": "HS256"], claims.merging(["nbf": now + 300]) { $1 })),
                ("no exp", forged(["alg": "HS256"], ["sub": "u", "role": "enduser"])),
                ("unknown role", forged(["alg": "HS256"], claims.merging(["role": "superuser"]) { $1 })),
                ("malformed segments", "abc.def"), ("bad base64", "###.$$$.%%%"),
            ]
            var bad: [HTTPFields] = [
                [:], [.authorization: "Bearer"], [.authorization: "Basic dTpw"], [.authorization: "Bearer not.a.token"], [.authorization: good],
            ]
            bad += table.map { [.authorization: "Bearer " + $0.1] }
            for headers in bad {
                try await client.execute(uri: "/api/chat/sessions", method: .get, headers: headers) { response in
                    #expect(response.status == .unauthorized)
                    let error = json(response)
                    #expect(error["message"] as? String == "Invalid authentication token")
                    #expect(error["requestId"] as? String == response.headers[.xRequestID])
                }
            }
            for scheme in ["Bearer", "bearer", "BEARER"] {
                try await client.execute(uri: "/api/chat/sessions", method: .get, headers: [.authorization: "\(scheme) \(good)"]) {
                    #expect($0.status == .ok)
                }
            }
        }
    }

    @Test("create a session: 201 with its id and title; bad bodies are 400 with a clear message")
    func createSession() async throws {
        try await APIFixture.with { fixture, client in
            let headers = fixture.auth("user-create")
            try await fixture.fund("user-create")
            let sessionID = try await client.execute(
                uri: "/api/chat/sessions", method: .post, headers: headers,
                body: body(["title": "Test Chat", "modelId": "anthropic.claude-3-sonnet-20240229-v1:0", "initialMessage": "Hello"])
            ) { response in
                #expect(response.status == .created)
                let session = json(response)
                #expect(session["title"] as? String == "Test Chat")
                #expect(session["modelId"] as? String == "anthropic.claude-3-sonnet-20240229-v1:0")
                let id = try #require(session["sessionId"] as? String)
                #expect(SessionID.isValid(id))
                return id
            }
            #expect(try await fixture.store.session(id: sessionID, userId: "user-create")?.title == "Test Chat")

            let cases: [(ByteBuffer?, String)] = [
                (nil, "The request body must be a JSON object"),
                (ByteBuffer(string: "{\"title\": "), "The request body is not valid JSON"),
                (ByteBuffer(string: "[1,2]"), "The request body is not valid JSON"),
                (body([:]), "title is required"),
                (body(["title": "   "]), "title must not be empty"),
                (body(["title": 42]), "title must be a string"),
                (body(["title": String(repeating: "x", count: 201)]), "title must be at most 200 characters and 1000 bytes of UTF-8 text"),
                (body(["title": "ok", "modelId": "invalid-model-id"]), "Invalid model ID"),
                (body(["title": "ok", "initialMessage": 7]), "initialMessage must be a string"),
            ]
            for (requestBody, message) in cases {
                try await client.execute(uri: "/api/chat/sessions", method: .post, headers: headers, body: requestBody) { response in
                    #expect(response.status == .badRequest, "\(message)")
                    #expect(json(response)["message"] as? String == message)
                }
            }
            try await client.execute(uri: "/api/chat/sessions", method: .get, headers: headers) { response in
                #expect(json(response)["sessions"] as? [[String: Any]] != nil)
                #expect((json(response)["pagination"] as? [String: Int])?["total"] == 1)
            }
        }
    }

    @Test("list: newest first, paginated, only the caller's own sessions")
    func listPagination() async throws {
        try await APIFixture.with { fixture, client in
            let headers = fixture.auth("user-list")
            try await fixture.fund("user-list")
            for index in 1...5 {
                try await client.execute(uri: "/api/chat/sessions", method: .post, headers: headers, body: body(["title": "S\(index)"])) {
                    #expect($0.status == .created)
                }
            }
            var titles: [String] = []
            for page in 1...3 {
                try await client.execute(uri: "/api/chat/sessions?page=\(page)&limit=2", method: .get, headers: headers) { response in
                    #expect(response.status == .ok)
                    let list = json(response)
                    let sessions = try #require(list["sessions"] as? [[String: Any]])
                    #expect(sessions.count == (page < 3 ? 2 : 1))
                    titles += sessions.compactMap { $0["title"] as? String }
                    #expect(list["pagination"] as? [String: Int] == ["page": page, "limit": 2, "total": 5, "pages": 3])
                }
            }
            #expect(titles == ["S5", "S4", "S3", "S2", "S1"])
            try await client.execute(uri: "/api/chat/sessions", method: .get, headers: fixture.auth("user-other")) { response in
                #expect((json(response)["sessions"] as? [Any])?.isEmpty == true)
            }
            for query in ["page=0", "limit=0", "limit=101", "page=x"] {
                try await client.execute(uri: "/api/chat/sessions?\(query)", method: .get, headers: headers) { #expect($0.status == .badRequest) }
            }
        }
    }

    @Test("get, messages and delete: owner only; another user's session is 404; a bad id is 400")
    func getAndDelete() async throws {
        try await APIFixture.with { fixture, client in
            let owner = fixture.auth("user-owner")
            let stranger = fixture.auth("user-stranger")
            let session = try await fixture.store.createSession(userId: "user-owner", title: "Mine", modelId: nil)
            _ = try await fixture.store.appendMessage(NewMessage(sessionId: session.id, jobId: "job-1", role: .user, content: "Hi"))
            _ = try await fixture.store.appendMessage(NewMessage(sessionId: session.id, jobId: "job-1", role: .assistant, content: "Hello!"))

            try await client.execute(uri: "/api/chat/sessions/\(session.id)", method: .get, headers: owner) { response in
                #expect(response.status == .ok)
                let detail = json(response)
                #expect(detail["sessionId"] as? String == session.id)
                #expect((detail["messages"] as? [[String: Any]])?.compactMap { $0["content"] as? String } == ["Hi", "Hello!"])
            }
            try await client.execute(uri: "/api/chat/sessions/\(session.id)/messages", method: .get, headers: owner) { response in
                #expect(response.status == .ok)
                #expect((json(response)["messages"] as? [[String: Any]])?.compactMap { $0["role"] as? String } == ["user", "assistant"])
            }
            for path in ["", "/messages"] {
                try await client.execute(uri: "/api/chat/sessions/\(session.id)\(path)", method: .get, headers: stranger) { response in
                    #expect(response.status == .notFound)
                    #expect(json(response)["message"] as? String == "Session not found")
                }
            }
            try await client.execute(uri: "/api/chat/sessions/\(session.id)", method: .delete, headers: stranger) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/api/chat/sessions/not-an-id", method: .get, headers: owner) { response in
                #expect(response.status == .badRequest)
                #expect(json(response)["message"] as? String == "Invalid session ID")
            }
            try await client.execute(uri: "/api/chat/sessions/0123456789abcdef01234567", method: .get, headers: owner) { #expect($0.status == .notFound) }

            try await client.execute(uri: "/api/chat/sessions/\(session.id)", method: .delete, headers: owner) { response in
                #expect(response.status == .ok)
                #expect(json(response)["message"] as? String == "Session deleted")
            }
            try await client.execute(uri: "/api/chat/sessions/\(session.id)", method: .get, headers: owner) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/api/chat/sessions/\(session.id)", method: .delete, headers: owner) { #expect($0.status == .notFound) }
            #expect(try await fixture.store.messages(sessionId: session.id).isEmpty)
        }
    }

    @Test("a long session: GET shows its newest 100 messages with a cursor to older ones; /messages pages back with limit and before, each message once")
    func messagesArePaginated() async throws {
        try await APIFixture.with { fixture, client in
            let owner = fixture.auth("user-pages")
            let session = try await fixture.store.createSession(userId: "user-pages", title: "Long", modelId: nil)
            _ = try await fixture.store.appendMessages((0..<130).map { NewMessage(sessionId: session.id, jobId: "job-\($0)", role: .user, content: "m\($0)") })
            try await client.execute(uri: "/api/chat/sessions/\(session.id)", method: .get, headers: owner) { response in
                let detail = json(response)
                let contents = (detail["messages"] as? [[String: Any]])?.compactMap { $0["content"] as? String }
                #expect(contents == (30..<130).map { "m\($0)" })
                #expect(detail["messageCount"] as? Int != nil)
                #expect(detail["olderMessagesCursor"] as? String != nil)
            }
            var seen: [String] = []
            var before: String?
            var pages = 0
            repeat {
                let uri = "/api/chat/sessions/\(session.id)/messages?limit=50" + (before.map { "&before=\($0)" } ?? "")
                let page = try await client.execute(uri: uri, method: .get, headers: owner) { json($0) }
                seen = ((page["messages"] as? [[String: Any]])?.compactMap { $0["content"] as? String } ?? []) + seen
                before = page["nextCursor"] as? String
                pages += 1
            } while before != nil && pages < 10
            #expect(pages == 3)
            #expect(seen == (0..<130).map { "m\($0)" })
            for bad in ["limit=0", "limit=201", "limit=x", "before=nope", "before=1_0123456789ABCDEF01234567"] {
                try await client.execute(uri: "/api/chat/sessions/\(session.id)/messages?\(bad)", method: .get, headers: owner) { response in
                    #expect(response.status == .badRequest, "\(bad)")
                }
            }
        }
    }

    @Test("TC-10 / TC-11: models filtered by role, and a recommendation with a reason")
    func models() async throws {
        try await APIFixture.with { fixture, client in
            try await client.execute(uri: "/api/models", method: .get, headers: fixture.auth("u-models")) { response in
                #expect(response.status == .ok)
                let ids = (json(response)["models"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
                #expect(ids.contains("anthropic.claude-3-sonnet-20240229-v1:0"))
                #expect(!ids.contains("anthropic.claude-3-opus-20240229-v1:0"))
            }
            try await client.execute(uri: "/api/models", method: .get, headers: fixture.auth("a-models", role: .admin)) { response in
                let ids = (json(response)["models"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
                #expect(ids.contains("anthropic.claude-3-opus-20240229-v1:0"))
            }
            try await client.execute(
                uri: "/api/models/recommend", method: .post, headers: fixture.auth("u-models"), body: body(["task": "complex reasoning", "priority": "quality"])
            ) { response in
                #expect(response.status == .ok)
                #expect((json(response)["recommendedModel"] as? [String: Any])?["id"] as? String != nil)
                #expect((json(response)["reason"] as? String)?.isEmpty == false)
                #expect((json(response)["alternatives"] as? [Any])?.count == 2)
            }
            for bad in [["priority": "quality"], ["task": "x", "priority": "fastest"]] {
                try await client.execute(uri: "/api/models/recommend", method: .post, headers: fixture.auth("u-models"), body: body(bad)) {
                    #expect($0.status == .badRequest)
                }
            }
            try await client.execute(uri: "/api/models", method: .get) { #expect($0.status == .unauthorized) }
        }
    }

    @Test("TC-12: the sessions generating now are listed for supervisors and admins, refused to end users")
    func activeSessions() async throws {
        try await APIFixture.with { fixture, client in
            for role in [UserRole.supervisor, .admin] {
                try await client.execute(uri: "/api/chat/sessions/active", method: .get, headers: fixture.auth("s-active", role: role)) { response in
                    #expect(response.status == .ok)
                    let sessions = json(response)["sessions"] as? [[String: Any]]
                    #expect(sessions != nil)
                    #expect(json(response)["count"] as? Int == sessions?.count)
                }
            }
            try await client.execute(uri: "/api/chat/sessions/active", method: .get, headers: fixture.auth("u-active")) { response in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/api/chat/sessions/active", method: .get) { #expect($0.status == .unauthorized) }
        }
    }

    @Test("an unknown route is a JSON 404 with a request id")
    func unknownRoute() async throws {
        try await APIFixture.with { _, client in
            try await client.execute(uri: "/api/nothing-here", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(json(response)["code"] as? String == "NOT_FOUND")
                #expect(response.headers[.xRequestID] != nil)
            }
        }
    }
}

import ChatCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing

@testable import API
@testable import ChatState
@testable import Queue

@Suite("chat-api: rate limits and credits", .serialized)
struct LimitsAndCreditsTests {
    @Test("TC-14: 20 session creations 0.1 s apart meet 429 well before the 20th, with Retry-After and RateLimit headers")
    func sessionCreationLimited() async throws {
        let limits = try RateLimitSettings(environment: Environment([:]))
        try await APIFixture.with(rateLimits: limits) { fixture, client in
            let user = "tc14-\(UUID().uuidString.prefix(8))"
            try await fixture.fund(user)
            var statuses: [HTTPResponse.Status] = []
            for index in 1...20 {
                try await client.execute(
                    uri: "/api/chat/sessions", method: .post, headers: fixture.auth(user), body: body(["title": "Rate limit test \(index)"])
                ) { response in
                    statuses.append(response.status)
                    if response.status == .tooManyRequests {
                        #expect(Int(response.headers[.retryAfter] ?? "") ?? 0 >= 1)
                        #expect(response.headers[.rateLimitLimit] == "10")
                        #expect(response.headers[.rateLimitRemaining] == "0")
                        #expect(json(response)["code"] as? String == "RATE_LIMITED")
                    } else {
                        #expect(response.headers[.rateLimitRemaining] != nil)
                    }
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            let first429 = try #require(statuses.firstIndex(of: .tooManyRequests))
            #expect(first429 < 10, "first 429 at request \(first429 + 1)")
            #expect(statuses[..<first429].allSatisfy { $0 == .created })
            // Another user is not affected by this user's limit.
            try await fixture.fund("\(user)-other")
            try await client.execute(
                uri: "/api/chat/sessions", method: .post, headers: fixture.auth("\(user)-other"), body: body(["title": "fine"])
            ) { #expect($0.status == .created) }
        }
    }

    @Test("with Redis down the limiter fails open: requests still pass")
    func failsOpen() async throws {
        let deadRedis = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: TestEnvironment.freePort(), connectTimeout: .milliseconds(200)))
        let limits = try RateLimitSettings(environment: Environment(["RATE_LIMIT_READ": "1/60:1"]))
        try await APIFixture.with(redis: deadRedis, rateLimits: limits) { fixture, client in
            for _ in 0..<3 {
                try await client.execute(uri: "/api/chat/sessions", method: .get, headers: fixture.auth("open")) { #expect($0.status == .ok) }
            }
        }
    }

    @Test("TC-13 at creation: a user with no credits gets 402 with the guide's message")
    func noCredits() async throws {
        try await APIFixture.with { fixture, client in
            try await client.execute(
                uri: "/api/chat/sessions", method: .post, headers: fixture.auth("pauper-\(UUID().uuidString.prefix(8))"), body: body(["title": "t"])
            ) { response in
                #expect(response.status.code == 402)
                #expect(json(response)["message"] as? String == "Insufficient credits to process request")
            }
        }
    }

    @Test("policies are read from the environment; a malformed one is refused with a line naming it")
    func policySettings() throws {
        let settings = try RateLimitSettings(environment: Environment(["RATE_LIMIT_SESSION_CREATE": "3/10:2"]))
        #expect(settings.policies[.sessionCreate] == RateLimitPolicy(limit: 3, period: .seconds(10), burst: 2))
        #expect(settings.policies[.read] == RateLimitClass.read.defaultPolicy)
        #expect(throws: ConfigurationError.self) { try RateLimitSettings(environment: Environment(["RATE_LIMIT_GENERATION": "fast"])) }
    }
}

@Suite("chat-api processes sharing Redis; accounting outages", .serialized)
struct SharedLimitsAndOutagesTests {
    static func apiEnvironment(port: Int, extra: [String: String] = [:]) -> [String: String] {
        [
            "PORT": String(port), "HOST": "127.0.0.1", "REDIS_URL": TestEnvironment.redisURL, "MONGO_URI": TestEnvironment.mongoURI,
            "JWT_ACCESS_SECRET": APIFixture.secret, "ACCOUNTING_URL": TestEnvironment.accountingURL, "LOG_LEVEL": "warning",
        ].merging(extra) { $1 }
    }

    static func waitForPort(_ port: Int) async throws {
        try await expectEventually(.seconds(20)) {
            (try? await HTTPProbe.status("http://127.0.0.1:\(port)/livez")) == 200
        }
    }

    @Test("two chat-api processes on different ports limit the combined request rate as one")
    func sharedLimit() async throws {
        let ports = [TestEnvironment.freePort(), TestEnvironment.freePort()]
        // A unique limit class key space per run: the read limit of a unique user.
        let extra = ["RATE_LIMIT_READ": "6/60:6", "RATE_LIMIT_IP": "1000/60:1000"]
        let processes = try ports.map { try ChildProcess(executable: ChildProcess.binary("CHAT_API_BIN"), environment: Self.apiEnvironment(port: $0, extra: extra)) }
        defer { processes.forEach { $0.signal(SIGTERM) } }
        for port in ports { try await Self.waitForPort(port) }
        let verifier = try AccessTokenVerifier(secret: APIFixture.secret)
        let token = verifier.sign(userID: "shared-\(UUID().uuidString.prefix(8))", role: .enduser, lifetime: 300)
        var allowed = 0
        var limited = 0
        for index in 0..<12 {
            let status = try await HTTPProbe.status("http://127.0.0.1:\(ports[index % 2])/api/chat/sessions", token: token)
            if status == 200 { allowed += 1 } else if status == 429 { limited += 1 }
        }
        #expect(allowed == 6)
        #expect(limited == 6)
        for process in processes { process.signal(SIGTERM) }
        for process in processes { #expect(try await process.waitForExit(limit: .seconds(15)).status == 0) }
    }

    @Test("accounting stopped: session creation is 503 ACCOUNTING_UNAVAILABLE within the client timeout, and works once it is back")
    func accountingOutage() async throws {
        let port = TestEnvironment.freePort()
        let database = AccountingFixture.uniqueDatabasePath()
        defer { AccountingFixture.removeDatabase(at: database) }
        let accountingEnvironment = ["PORT": String(port), "HOST": "127.0.0.1", "ACCOUNTING_DATABASE_PATH": database, "JWT_ACCESS_SECRET": APIFixture.secret]
        let accounting = NIOLockedValueBox(try ChildProcess(executable: ChildProcess.binary("ACCOUNTING_STANDIN_BIN"), environment: accountingEnvironment))
        try await Self.waitForPort(port, path: "/health")
        let url = "http://127.0.0.1:\(port)"
        try await APIFixture.with(accountingURL: url) { fixture, client in
            try await fixture.fund("outage-user", accountingURL: url)
            try await client.execute(uri: "/api/chat/sessions", method: .post, headers: fixture.auth("outage-user"), body: body(["title": "up"])) {
                #expect($0.status == .created)
            }
            let running = accounting.withLockedValue { $0 }
            running.signal(SIGKILL)
            _ = try await running.waitForExit(limit: .seconds(10))
            let clock = ContinuousClock()
            let start = clock.now
            try await client.execute(uri: "/api/chat/sessions", method: .post, headers: fixture.auth("outage-user"), body: body(["title": "down"])) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(json(response)["code"] as? String == "ACCOUNTING_UNAVAILABLE")
            }
            #expect(clock.now - start < .seconds(6), "two tries of at most 2 s each, plus slack")
            let restarted = try ChildProcess(executable: ChildProcess.binary("ACCOUNTING_STANDIN_BIN"), environment: accountingEnvironment)
            accounting.withLockedValue { $0 = restarted }
            try await Self.waitForPort(port, path: "/health")
            try await client.execute(uri: "/api/chat/sessions", method: .post, headers: fixture.auth("outage-user"), body: body(["title": "back"])) {
                #expect($0.status == .created)
            }
        }
        let last = accounting.withLockedValue { $0 }
        last.signal(SIGTERM)
        _ = try await last.waitForExit(limit: .seconds(10))
    }

    static func waitForPort(_ port: Int, path: String) async throws {
        try await expectEventually(.seconds(20)) { (try? await HTTPProbe.status("http://127.0.0.1:\(port)\(path)")) == 200 }
    }
}

import Catalog
import ChatCore
import Foundation
import Testing

/// The model catalog as a file, read by every process, and the fallback chains it holds: through chat-api,
/// chat-worker, the emulator and an accounting stand-in that prices from the same file.
@Suite("a catalog file and fallback chains, end to end", .serialized)
struct CatalogAndFallbackTests {
    static let verifier = try! AccessTokenVerifier(secret: APIFixture.secret)
    static let haiku = "anthropic.claude-3-haiku-20240307-v1:0"
    static let novaLite = "amazon.nova-lite-v1:0"

    /// Adds a model for supervisors and admins (Claude 3 Haiku on Bedrock under a house name and price), the same
    /// Haiku through us-west-2 (unlisted: a fallback only), and gives Haiku the chain west, then Nova Lite. Each
    /// answering model has its own, very different price, so that a bill shows which one was charged.
    static let catalogFile = """
        mode: extend
        models:
          - id: acme.house-haiku-v1:0
            name: House Haiku
            family: anthropic
            contextWindow: 200000
            maxOutputTokens: 4096
            pricing: { inputCreditsPer1K: 2, outputCreditsPer1K: 10 }
            roles: [supervisor, admin]
            bedrockModelId: anthropic.claude-3-haiku-20240307-v1:0
            recommendation: { strengths: [legal], speed: 5, quality: 4, cost: 2 }
          - id: haiku-west
            name: Claude 3 Haiku (us-west-2)
            family: anthropic
            contextWindow: 200000
            maxOutputTokens: 4096
            pricing: { inputCreditsPer1K: 20, outputCreditsPer1K: 40 }
            bedrockModelId: anthropic.claude-3-haiku-20240307-v1:0
            region: us-west-2
            listed: false
          - id: anthropic.claude-3-haiku-20240307-v1:0
            fallbacks: [haiku-west, amazon.nova-lite-v1:0]
          - id: amazon.nova-lite-v1:0
            pricing: { inputCreditsPer1K: 5, outputCreditsPer1K: 10 }
        """

    /// An accounting stand-in and a pair of chat-api and chat-worker, all reading `catalogFile`.
    static func withStack(_ body: (ServicePair, String, ModelCatalog) async throws -> Void) async throws {
        let path = NSTemporaryDirectory() + "catalog-\(UUID().uuidString).yaml"
        try catalogFile.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let catalog = try ModelCatalog.load(environment: Environment(["MODEL_CATALOG_PATH": path]))
        let port = TestEnvironment.freePort()
        let database = AccountingFixture.uniqueDatabasePath()
        defer { AccountingFixture.removeDatabase(at: database) }
        let accounting = try ChildProcess(
            executable: ChildProcess.binary("ACCOUNTING_STANDIN_BIN"),
            environment: [
                "PORT": String(port), "HOST": "127.0.0.1", "ACCOUNTING_DATABASE_PATH": database, "JWT_ACCESS_SECRET": APIFixture.secret,
                "MODEL_CATALOG_PATH": path,
            ]
        )
        defer { if accounting.isRunning { accounting.signal(SIGKILL) } }
        let accountingURL = "http://127.0.0.1:\(port)"
        try await expectEventually(.seconds(30)) { (try? await HTTPProbe.status(accountingURL + "/health")) == 200 }
        let settings = ["MODEL_CATALOG_PATH": path, "ACCOUNTING_URL": accountingURL]
        let pair = try ServicePair(apiEnvironment: settings, workerEnvironment: settings)
        do {
            try await pair.ready()
            try await body(pair, accountingURL, catalog)
        } catch {
            pair.kill()
            throw error
        }
        _ = try await pair.stop()
    }

    /// A funded user's token.
    static func user(_ name: String, role: UserRole, accountingURL: String) async throws -> String {
        try await Accounting.fundedUser(name, role: role, credits: 10_000, accountingURL: accountingURL, verifier: verifier).token
    }

    /// Streams `message` in a new session (of `model`, if given) and returns the session and its events up to the last.
    static func stream(_ message: String, model: String? = nil, token: String, apiURL: String) async throws -> (session: String, events: [SSEEvent]) {
        var create: [String: Any] = ["title": "catalog"]
        if let model { create["modelId"] = model }
        let created = try await HTTPProbe.json(.POST, apiURL + "/api/chat/sessions", token: token, body: create)
        let sessionID = try #require(created.body["sessionId"] as? String, "\(created.body)")
        let stream = try await SSEConnection.open(
            apiURL + "/api/chat/sessions/\(sessionID)/stream", headers: ["Authorization": "Bearer \(token)"], json: ["message": message]
        )
        return (sessionID, try await stream.collect { $0.event == "complete" || $0.event == "error" })
    }

    /// The user's available credits at the accounting stand-in.
    static func balance(token: String, accountingURL: String) async throws -> Double {
        let answer = try await HTTPProbe.json(.GET, accountingURL + "/api/credits/balance", token: token)
        return try #require(answer.body["totalCredits"] as? Double)
    }

    @Test("a model added by the file is listed for its roles only and answers end to end, billed at the file's prices", .timeLimit(.minutes(2)))
    func addedModel() async throws {
        try await Self.withStack { pair, accountingURL, catalog in
            let supervisor = try await Self.user("cat-sup", role: .supervisor, accountingURL: accountingURL)
            let enduser = try await Self.user("cat-user", role: .enduser, accountingURL: accountingURL)
            func ids(_ token: String) async throws -> [String] {
                let listed = try await HTTPProbe.json(.GET, pair.apiURL + "/api/models", token: token)
                return (listed.body["models"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
            }
            let forSupervisor = try await ids(supervisor)
            let forUser = try await ids(enduser)
            #expect(forSupervisor.contains("acme.house-haiku-v1:0") && !forUser.contains("acme.house-haiku-v1:0"))
            #expect(!forSupervisor.contains("haiku-west") && !forUser.contains("haiku-west"))
            #expect(forUser.contains("anthropic.claude-3-sonnet-20240229-v1:0"))
            let recommended = try await HTTPProbe.json(
                .POST, pair.apiURL + "/api/models/recommend", token: supervisor, body: ["task": "review legal terms", "priority": "balanced"]
            )
            #expect((recommended.body["recommendedModel"] as? [String: Any])?["id"] as? String == "acme.house-haiku-v1:0", "\(recommended.body)")

            let before = try await Self.balance(token: supervisor, accountingURL: accountingURL)
            let events = try await Self.stream("Hello house model [[tokens:200]]", model: "acme.house-haiku-v1:0", token: supervisor, apiURL: pair.apiURL).events
            let complete = try #require(events.last?.event == "complete" ? events.last?.json : nil, "\(events)")
            #expect(events.first { $0.event == "model" }?.json["modelId"] as? String == "acme.house-haiku-v1:0")
            #expect(complete["modelId"] as? String == "acme.house-haiku-v1:0" && complete["fallbackFrom"] == nil)
            let house = try #require(catalog.model(id: "acme.house-haiku-v1:0"))
            let cost = house.creditCost(inputTokens: complete["inputTokens"] as? Int ?? -1, outputTokens: complete["outputTokens"] as? Int ?? -1)
            #expect(complete["creditsCharged"] as? Double == Double(cost))
            #expect(complete["outputTokens"] as? Int == 200)
            #expect(cost == 3)  // 2 per 1K in (a few tokens), 10 per 1K out: 2 credits and a fraction, rounded up
            try await expectEventually(.seconds(10)) { (try? await Self.balance(token: supervisor, accountingURL: accountingURL)) == before - Double(cost) }

            for model in ["acme.house-haiku-v1:0", "haiku-west"] {
                let refused = try await HTTPProbe.json(.POST, pair.apiURL + "/api/chat/sessions", token: enduser, body: ["title": "no", "modelId": model])
                #expect(refused.status == 400 && refused.body["code"] as? String == "INVALID_MODEL", "\(model): \(refused.body)")
            }
        }
    }

    @Test("throttled before its first chunk, a model gives way down its chain: another region, then another model; the events and the bill name the one that answered; a chain exhausted ends in an error and costs nothing", .timeLimit(.minutes(3)))
    func fallbacks() async throws {
        try await Self.withStack { pair, accountingURL, catalog in
            let token = try await Self.user("cat-fb", role: .enduser, accountingURL: accountingURL)
            let cases: [(marker: String, answered: String)] = [
                ("[[throttle-region:us-east-1]]", "haiku-west"),
                ("[[throttle-model:\(Self.haiku)]]", Self.novaLite),
                ("[[not-ready-model:\(Self.haiku)]]", Self.novaLite),
            ]
            for (marker, answered) in cases {
                let before = try await Self.balance(token: token, accountingURL: accountingURL)
                let (sessionID, events) = try await Self.stream("Fall back please \(marker) [[tokens:200]]", token: token, apiURL: pair.apiURL)
                let complete = try #require(events.last?.event == "complete" ? events.last?.json : nil, "\(marker): \(events)")
                let models = events.filter { $0.event == "model" }.map(\.json)
                #expect(models.map { $0["modelId"] as? String } == [Self.haiku, answered], "\(marker)")
                #expect(models.last?["fallbackFrom"] as? String == Self.haiku)
                #expect(complete["modelId"] as? String == answered && complete["fallbackFrom"] as? String == Self.haiku, "\(complete)")
                // Every chunk came from the model that answered, after its model event.
                let firstChunk = try #require(events.firstIndex { $0.event == "chunk" })
                #expect(events.lastIndex { $0.event == "model" }! < firstChunk)
                let model = try #require(catalog.model(id: answered))
                let cost = model.creditCost(inputTokens: complete["inputTokens"] as? Int ?? -1, outputTokens: complete["outputTokens"] as? Int ?? -1)
                #expect(complete["creditsCharged"] as? Double == Double(cost), "\(marker)")
                // At the job's own model's price the same tokens would cost another amount: the bill tells them apart.
                let asked = try #require(catalog.model(id: Self.haiku))
                #expect(asked.creditCost(inputTokens: complete["inputTokens"] as? Int ?? -1, outputTokens: complete["outputTokens"] as? Int ?? -1) != cost)
                try await expectEventually(.seconds(10)) { (try? await Self.balance(token: token, accountingURL: accountingURL)) == before - Double(cost) }
                // The stored reply names it too.
                let stored = try await HTTPProbe.json(.GET, pair.apiURL + "/api/chat/sessions/\(sessionID)", token: token)
                let reply = (stored.body["messages"] as? [[String: Any]])?.last { $0["role"] as? String == "assistant" }
                #expect(reply?["modelId"] as? String == answered, "\(stored.body)")
            }

            // Every link throttled: a clean error after the chain, and the reservation refunded in full.
            let before = try await Self.balance(token: token, accountingURL: accountingURL)
            let events = try await Self.stream(
                "Nobody home [[throttle-model:\(Self.haiku)]] [[throttle-model:\(Self.novaLite)]]", token: token, apiURL: pair.apiURL
            ).events
            #expect(events.last?.event == "error", "\(events)")
            #expect((events.last?.json["message"] as? String)?.contains("Throttling") == true, "\(events.last?.data ?? "")")
            #expect(!events.contains { $0.event == "chunk" })
            try await expectEventually(.seconds(10)) { (try? await Self.balance(token: token, accountingURL: accountingURL)) == before }
        }
    }

    @Test("a broken catalog file stops each process at start with one line naming the entry", .timeLimit(.minutes(1)))
    func brokenFileStopsEveryProcess() async throws {
        let path = NSTemporaryDirectory() + "catalog-\(UUID().uuidString).yaml"
        try "models:\n  - id: acme.broken\n    name: Broken\n    family: anthropic\n    contextWindow: -5\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let common = [
            "MODEL_CATALOG_PATH": path, "JWT_ACCESS_SECRET": APIFixture.secret, "REDIS_URL": TestEnvironment.redisURL, "HOST": "127.0.0.1",
            "PORT": String(TestEnvironment.freePort()), "ACCOUNTING_DATABASE_PATH": AccountingFixture.uniqueDatabasePath(),
        ]
        for binary in ["CHAT_API_BIN", "CHAT_WORKER_BIN", "ACCOUNTING_STANDIN_BIN", "bedrock-emulator"] {
            let process = try ChildProcess(executable: ChildProcess.binary(binary), environment: common)
            let exit = try await process.waitForExit(limit: .seconds(20))
            #expect(exit.status != 0, "\(binary)")
            #expect(exit.output.contains(#"MODEL_CATALOG_PATH: model 1 ("acme.broken"): "#), "\(binary): \(exit.output)")
        }
    }
}

import Accounting
import AsyncHTTPClient
import ChatCore
import Foundation
import Logging
import Testing

@testable import ChatState
@testable import Queue
@testable import Worker

@Suite("Settlements kept while accounting is unreachable")
struct PendingSettlementsTests {
    @Test("a user's token is reused for a minute, then signed anew; each is valid, for that user, for minutes more")
    func userTokensAreReused() throws {
        let verifier = try AccessTokenVerifier(secret: APIFixture.secret)
        let signer = UserTokenSigner(verifier)
        let now = Int(Date().timeIntervalSince1970)
        let first = signer.token(for: "alice", now: now)
        #expect(signer.token(for: "alice", now: now + UserTokenSigner.reuse - 1) == first)
        let other = signer.token(for: "bob", now: now)
        #expect(other != first && verifier.verify(other, now: now)?.id == "bob")
        let user = try #require(verifier.verify(first, now: now + UserTokenSigner.lifetime - UserTokenSigner.reuse))
        #expect(user.id == "alice" && user.role == .enduser)
        let renewed = signer.token(for: "alice", now: now + UserTokenSigner.reuse)
        #expect(renewed != first)
        #expect(verifier.verify(renewed, now: now + UserTokenSigner.lifetime + 30)?.id == "alice")
        // A clock that went back never hands out a token signed "in the future".
        #expect(signer.token(for: "bob", now: now - 5) != other)
    }

    @Test("a settlement that accounting cannot take is kept in Redis and settled by a later retry, once")
    func keptThenSettled() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let verifier = try AccessTokenVerifier(secret: APIFixture.secret)
        let signer = UserTokenSigner(verifier)
        let user = "settle-\(UUID().uuidString.prefix(8))"
        let reservationID = UUID().uuidString.lowercased()
        try await Accounting.fund(user, credits: 100, accountingURL: TestEnvironment.accountingURL, verifier: verifier)
        let live = Accounting.client()
        _ = try await live.reserve(
            reservationID: reservationID, sessionID: "s", modelID: ModelCatalog.builtIn.defaultModelID, estimatedTokens: 1_000,
            token: verifier.sign(userID: user, role: .enduser, lifetime: 60)
        )
        let down = AccountingClient(baseURL: "http://127.0.0.1:\(TestEnvironment.freePort())", httpClient: HTTPClient.shared, timeout: .milliseconds(300))
        let logger = Logger(label: "test.settlements")
        var unreachable = PendingSettlements(redis: redis, ledger: down, signer: signer, interval: .seconds(60), logger: logger)
        unreachable.pendingKey = uniqueKey("pending")
        let settlement = PendingSettlement(reservationID: reservationID, userID: user, modelID: ModelCatalog.builtIn.defaultModelID, inputTokens: 100, outputTokens: 200, success: true)
        try await unreachable.add(settlement)
        #expect(await unreachable.retry() == 0)
        #expect(try await redis.hgetall(unreachable.pendingKey)[reservationID] != nil)

        var reachable = PendingSettlements(redis: redis, ledger: live, signer: signer, interval: .seconds(60), logger: logger)
        reachable.pendingKey = unreachable.pendingKey
        #expect(await reachable.retry() == 1)
        #expect(try await redis.hgetall(reachable.pendingKey)[reservationID] == nil)
        let again = try await live.finalize(
            reservationID: reservationID, modelID: ModelCatalog.builtIn.defaultModelID, inputTokens: 100, outputTokens: 200, success: true,
            token: verifier.sign(userID: user, role: .enduser, lifetime: 60)
        )
        #expect(again.creditsUsed > 0)  // the first settlement's charge, reported again; nothing charged twice
        let balance = try await HTTPProbe.json(.GET, TestEnvironment.accountingURL + "/api/credits/balance", token: verifier.sign(userID: user, role: .enduser, lifetime: 60))
        #expect(balance.body["totalCredits"] as? Int == 100 - Int(again.creditsUsed))
    }

    @Test("a settlement the service refuses for good is given up at once, one that keeps failing after its last try; neither stays for ever")
    func refusedAndExhaustedAreGivenUp() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let verifier = try AccessTokenVerifier(secret: APIFixture.secret)
        let signer = UserTokenSigner(verifier)
        let logger = Logger(label: "test.settlements")
        var refusing = PendingSettlements(
            redis: redis, ledger: RefusingLedger(error: ChatError(.badRequest, code: "ACCOUNTING_REJECTED", message: "400")), signer: signer,
            interval: .seconds(60), logger: logger
        )
        refusing.pendingKey = uniqueKey("pending")
        refusing.failedKey = uniqueKey("failed")
        let rejected = PendingSettlement(reservationID: "r-400", userID: "u", modelID: "m", inputTokens: 1, outputTokens: 1, success: true)
        try await refusing.add(rejected)
        #expect(await refusing.retry() == 0)
        #expect(try await redis.hgetall(refusing.pendingKey).isEmpty)
        let given = try #require(try await redis.hgetall(refusing.failedKey)["r-400"])
        let kept = try JSONDecoder().decode(PendingSettlement.self, from: Data(given.utf8))
        #expect(kept.tries == 1 && kept.lastError?.contains("ACCOUNTING_REJECTED") == true)

        var failing = PendingSettlements(
            redis: redis, ledger: RefusingLedger(error: ChatError(.unavailable, code: "ACCOUNTING_UNAVAILABLE", message: "down")), signer: signer,
            interval: .seconds(60), logger: logger
        )
        failing.pendingKey = uniqueKey("pending")
        failing.failedKey = uniqueKey("failed")
        try await failing.add(PendingSettlement(reservationID: "r-down", userID: "u", modelID: "m", inputTokens: 1, outputTokens: 1, success: true))
        #expect(await failing.retry() == 0)
        let retried = try #require(try await redis.hgetall(failing.pendingKey)["r-down"].map { try JSONDecoder().decode(PendingSettlement.self, from: Data($0.utf8)) })
        #expect(retried.tries == 1 && retried.firstFailedAt != nil)
        // A day later (as the entry says) it is given up, however many workers retried it meanwhile.
        var old = retried
        old.firstFailedAt = Date().timeIntervalSince1970 - 86_401
        try await failing.add(old)
        #expect(await failing.retry() == 0)
        #expect(try await redis.hgetall(failing.pendingKey).isEmpty)
        #expect(try await redis.hgetall(failing.failedKey)["r-down"] != nil)
    }

    @Test("a reservation settled by someone else first is visible: the worker's settlement logs both counts as a mismatch", .timeLimit(.minutes(1)))
    func settlementMismatchIsLogged() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let verifier = try AccessTokenVerifier(secret: APIFixture.secret)
        let user = "mismatch-\(UUID().uuidString.prefix(8))"
        try await Accounting.fund(user, credits: 100, accountingURL: TestEnvironment.accountingURL, verifier: verifier)
        let ledger = AccountingClient(baseURL: TestEnvironment.accountingURL, httpClient: HTTPClient.shared, serviceCredential: TestEnvironment.serviceCredential)
        let token = verifier.sign(userID: user, role: .enduser, lifetime: 60)
        let reservationID = UUID().uuidString.lowercased()
        _ = try await ledger.reserve(reservationID: reservationID, sessionID: "s", modelID: ModelCatalog.builtIn.defaultModelID, estimatedTokens: 1_000, token: token)
        // Whoever got hold of the reservation settles it for nothing first (the first settlement wins).
        _ = try await ledger.finalize(reservationID: reservationID, modelID: ModelCatalog.builtIn.defaultModelID, inputTokens: 0, outputTokens: 0, success: true, token: token)
        let log = LogRecord()
        let settler = Settler(ledger: ledger, signer: UserTokenSigner(verifier), redis: redis, logger: log.logger())
        let settled = try await settler.settle(PendingSettlement(
            reservationID: reservationID, userID: user, modelID: ModelCatalog.builtIn.defaultModelID, inputTokens: 300, outputTokens: 500, success: true, sessionID: "s"
        ))
        #expect(settled.creditsUsed == 0 && settled.inputTokens == 0 && settled.outputTokens == 0)
        let lines = log.lines(containing: "settled a reservation differently")
        #expect(lines.count == 1)
        #expect(lines.first?.level == .error)
        #expect(lines.first?.metadata["reason"] == "tokens")
        #expect(lines.first?.metadata["reportedTokens"] == "300+500")
        #expect(lines.first?.metadata["settledTokens"] == "0+0")
    }

    @Test("a chat service without the credential the accounting service requires is refused (403): 503 ACCOUNTING_REFUSED, so settlements are parked, not given up")
    func missingCredentialIsAnOutage() async throws {
        guard TestEnvironment.serviceCredential != nil else { return }  // the stand-in of make test requires one
        let verifier = try AccessTokenVerifier(secret: APIFixture.secret)
        let user = "nocred-\(UUID().uuidString.prefix(8))"
        try await Accounting.fund(user, credits: 100, accountingURL: TestEnvironment.accountingURL, verifier: verifier)
        let bare = AccountingClient(baseURL: TestEnvironment.accountingURL, httpClient: HTTPClient.shared)
        let token = verifier.sign(userID: user, role: .enduser, lifetime: 60)
        let error = await #expect(throws: ChatError.self) {
            _ = try await bare.reserve(reservationID: UUID().uuidString, sessionID: "s", modelID: ModelCatalog.builtIn.defaultModelID, estimatedTokens: 10, token: token)
        }
        #expect(error?.kind == .unavailable && error?.code == "ACCOUNTING_REFUSED")
        let settle = await #expect(throws: ChatError.self) {
            _ = try await bare.finalize(reservationID: UUID().uuidString, modelID: ModelCatalog.builtIn.defaultModelID, inputTokens: 1, outputTokens: 1, success: true, token: token)
        }
        #expect(settle?.kind == .unavailable)
    }

    @Test("what makes a settlement disagree: other token counts, or fewer credits than the tokens cost; an exact one agrees")
    func mismatchReasons() {
        let settlement = PendingSettlement(
            reservationID: "r", userID: "u", modelID: "anthropic.claude-3-sonnet-20240229-v1:0", inputTokens: 100, outputTokens: 900, success: true
        )
        #expect(Settler.mismatch(CreditSettlement(creditsUsed: 14, refund: 0, inputTokens: 100, outputTokens: 900), of: settlement) == nil)
        #expect(Settler.mismatch(CreditSettlement(creditsUsed: 14, refund: 0), of: settlement) == nil)
        #expect(Settler.mismatch(CreditSettlement(creditsUsed: 14, refund: 0, inputTokens: 100, outputTokens: 899), of: settlement) == "tokens")
        #expect(Settler.mismatch(CreditSettlement(creditsUsed: 13, refund: 0), of: settlement) == "undercharged")
        #expect(Settler.mismatch(CreditSettlement(creditsUsed: 0, refund: 0, expired: true), of: settlement) == nil)
        // An expired reservation settles nothing and says so with zero tokens: not someone else's settlement.
        #expect(Settler.mismatch(CreditSettlement(creditsUsed: 0, refund: 0, expired: true, inputTokens: 0, outputTokens: 0), of: settlement) == nil)
    }

    @Test("a reservation that expired before its settlement is charged late, once, and counted", .timeLimit(.minutes(1)))
    func expiredReservationIsChargedLate() async throws {
        let port = TestEnvironment.freePort()
        let database = AccountingFixture.uniqueDatabasePath()
        defer { AccountingFixture.removeDatabase(at: database) }
        let standin = try ChildProcess(
            executable: ChildProcess.binary("ACCOUNTING_STANDIN_BIN"),
            environment: [
                "PORT": String(port), "HOST": "127.0.0.1", "ACCOUNTING_DATABASE_PATH": database, "JWT_ACCESS_SECRET": APIFixture.secret,
                "RESERVATION_TTL_SECONDS": "1",
                "SWEEP_INTERVAL_MS": "100",
            ]
        )
        defer { standin.signal(SIGKILL) }
        let url = "http://127.0.0.1:\(port)"
        try await SharedLimitsAndOutagesTests.waitForPort(port, path: "/health")
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let verifier = try AccessTokenVerifier(secret: APIFixture.secret)
        let signer = UserTokenSigner(verifier)
        let user = "late-\(UUID().uuidString.prefix(8))"
        try await Accounting.fund(user, credits: 100, accountingURL: url, verifier: verifier)
        let ledger = AccountingClient(baseURL: url, httpClient: HTTPClient.shared, serviceCredential: TestEnvironment.serviceCredential)
        let token = verifier.sign(userID: user, role: .enduser, lifetime: 60)
        let reservationID = UUID().uuidString.lowercased()
        _ = try await ledger.reserve(reservationID: reservationID, sessionID: "s", modelID: ModelCatalog.builtIn.defaultModelID, estimatedTokens: 1_000, token: token)
        func balance() async throws -> Int {
            try await HTTPProbe.json(.GET, url + "/api/credits/balance", token: token).body["totalCredits"] as? Int ?? -1
        }
        // The reservation expires (its credits come back) before the job's settlement arrives.
        try await expectEventually(.seconds(20)) {
            try await HTTPProbe.json(.GET, url + "/api/credits/balance", token: token).body["reservedCredits"] as? Int == 0
        }
        let before = try await balance()
        let expiredBefore = Int(try await redis.send("HGET", Settler.statsKey, "settlementsExpired").string ?? "0") ?? 0
        let settler = Settler(ledger: ledger, signer: signer, redis: redis, logger: Logger(label: "test.settler"))
        let settlement = PendingSettlement(
            reservationID: reservationID, userID: user, modelID: ModelCatalog.builtIn.defaultModelID, inputTokens: 300, outputTokens: 500, success: true, sessionID: "s"
        )
        let charged = try await settler.settle(settlement)
        #expect(charged.creditsUsed > 0 && !charged.expired)
        #expect(try await balance() == before - Int(charged.creditsUsed))
        #expect(Int(try await redis.send("HGET", Settler.statsKey, "settlementsExpired").string ?? "0")! > expiredBefore)
        // A retry (the first answer lost) charges nothing more.
        let again = try await settler.settle(settlement)
        #expect(again.creditsUsed == charged.creditsUsed)
        #expect(try await balance() == before - Int(charged.creditsUsed))
    }
}

/// A ledger whose settlements always fail with `error`.
struct RefusingLedger: CreditLedger {
    let error: ChatError
    func hasCredits(_ credits: Double, token: String) async throws -> Bool { true }
    func reserve(reservationID: String, sessionID: String, modelID: String, estimatedTokens: Int, token: String) async throws -> CreditReservation {
        throw error
    }
    func finalize(reservationID: String, modelID: String, inputTokens: Int, outputTokens: Int, success: Bool, token: String) async throws -> CreditSettlement {
        throw error
    }
}

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
    @Test("a settlement that accounting cannot take is kept in Redis and settled by a later retry, once")
    func keptThenSettled() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let signer = try AccessTokenVerifier(secret: APIFixture.secret)
        let user = "settle-\(UUID().uuidString.prefix(8))"
        let reservationID = UUID().uuidString.lowercased()
        try await Accounting.fund(user, credits: 100, accountingURL: TestEnvironment.accountingURL, verifier: signer)
        let live = Accounting.client()
        _ = try await live.reserve(
            reservationID: reservationID, sessionID: "s", modelID: ModelCatalog.defaultModelID, estimatedTokens: 1_000,
            token: signer.sign(userID: user, role: .enduser, lifetime: 60)
        )
        let down = AccountingClient(baseURL: "http://127.0.0.1:\(TestEnvironment.freePort())", httpClient: HTTPClient.shared, timeout: .milliseconds(300))
        let logger = Logger(label: "test.settlements")
        let unreachable = PendingSettlements(redis: redis, ledger: down, signer: signer, interval: .seconds(60), logger: logger)
        let settlement = PendingSettlement(reservationID: reservationID, userID: user, modelID: ModelCatalog.defaultModelID, inputTokens: 100, outputTokens: 200, success: true)
        try await unreachable.add(settlement)
        #expect(await unreachable.retry() == 0)
        #expect(try await redis.hgetall(PendingSettlements.key)[reservationID] != nil)

        let reachable = PendingSettlements(redis: redis, ledger: live, signer: signer, interval: .seconds(60), logger: logger)
        #expect(await reachable.retry() >= 1)
        #expect(try await redis.hgetall(PendingSettlements.key)[reservationID] == nil)
        let again = try await live.finalize(
            reservationID: reservationID, modelID: ModelCatalog.defaultModelID, inputTokens: 100, outputTokens: 200, success: true,
            token: signer.sign(userID: user, role: .enduser, lifetime: 60)
        )
        #expect(again.creditsUsed > 0)  // the first settlement's charge, reported again; nothing charged twice
        let balance = try await HTTPProbe.json(.GET, TestEnvironment.accountingURL + "/api/credits/balance", token: signer.sign(userID: user, role: .enduser, lifetime: 60))
        #expect(balance.body["totalCredits"] as? Int == 100 - Int(again.creditsUsed))
    }
}

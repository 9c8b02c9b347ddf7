import CORS
import ChatCore
import ChatStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import Synchronization
import Testing

@testable import AccountingStandin

/// A clock the tests move forward (allocation expiry is counted in days).
final class MovableClock: Sendable {
    private let offset = Mutex<TimeInterval>(0)

    /// The real time plus every advance so far.
    func now() -> Date { Date().addingTimeInterval(offset.withLock { $0 }) }

    /// Moves the clock `seconds` ahead.
    func advance(_ seconds: TimeInterval) { offset.withLock { $0 += seconds } }
}

/// The accounting stand-in's router, in process, over a fresh SQLite database of its own.
struct AccountingFixture {
    static let secret = "dev_access_secret_key_change_this_in_production"
    static let sonnet = "anthropic.claude-3-sonnet-20240229-v1:0"
    static let haiku = "anthropic.claude-3-haiku-20240307-v1:0"
    let store: AccountStore
    let clock: MovableClock
    let client: any TestClientProtocol
    /// The test's own database file.
    let path: String
    let verifier = try! AccessTokenVerifier(secret: secret)

    /// Runs `body` against the app (with the sweeper every `sweepInterval`, if given), then deletes the database.
    static func with(
        ttl: Duration = .seconds(900), sweepInterval: Duration? = nil, serviceCredential: ServiceCredential? = nil,
        cors: CORSPolicy = try! CORSPolicy(parsing: ""), _ body: @Sendable (AccountingFixture) async throws -> Void
    ) async throws {
        let clock = MovableClock()
        let path = Self.uniqueDatabasePath()
        defer { Self.removeDatabase(at: path) }
        let store = try AccountStore(databasePath: path, reservationTTL: ttl, clock: { clock.now() }, logger: Logger(label: "accounting-test"))
        var app = Application(router: buildRouter(AccountingDependencies(
            store: store, verifier: try AccessTokenVerifier(secret: secret), serviceCredential: serviceCredential, cors: cors
        )))
        if let sweepInterval {
            app.addServices(ReservationSweeper(store: store, interval: sweepInterval, logger: Logger(label: "accounting-test.sweep")))
        }
        do {
            try await app.test(.router) { client in
                try await body(AccountingFixture(store: store, clock: clock, client: client, path: path))
            }
        } catch {
            try? await store.shutdown()
            throw error
        }
        try await store.shutdown()
    }

    /// Sends a request as `user` (no token when nil), with `service` as the service credential when given, and
    /// returns the status and the JSON object answered.
    func call(
        _ method: HTTPRequest.Method, _ uri: String, as user: String?, role: UserRole = .enduser, service: String? = nil,
        _ body: [String: Any]? = nil
    ) async throws -> (status: HTTPResponse.Status, json: [String: Any]) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let user { headers[.authorization] = "Bearer " + verifier.sign(userID: user, role: role, lifetime: 900) }
        if let service { headers[HTTPField.Name(ServiceCredential.headerName)!] = service }
        let response = try await client.execute(
            uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: $0)) }
        )
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any]
        return (response.status, object ?? [:])
    }

    /// `object` as JSON with sorted keys, to compare two answers.
    static func text(_ object: [String: Any]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }

    /// Allocates `credits` to `user` as the admin; expects 201.
    func fund(_ user: String, _ credits: Int, days: Int = 30) async throws {
        let reply = try await call(.post, "/api/credits/allocate", as: "admin", role: .admin, ["targetUserId": user, "credits": credits, "expiryDays": days])
        #expect(reply.status == .created)
    }

    /// The user's `[totalCredits, reservedCredits]` (-1 for a missing one).
    func balance(_ user: String) async throws -> [Int] {
        let reply = try await call(.get, "/api/credits/balance", as: user)
        return [reply.json["totalCredits"] as? Int ?? -1, reply.json["reservedCredits"] as? Int ?? -1]
    }

    /// `POST /api/streaming-sessions/initialize` for `user`.
    func initialize(_ user: String, _ sessionID: String, tokens: Int, model: String = sonnet) async throws -> (status: HTTPResponse.Status, json: [String: Any]) {
        try await call(.post, "/api/streaming-sessions/initialize", as: user, ["sessionId": sessionID, "modelId": model, "estimatedTokens": tokens])
    }

    /// `POST /api/streaming-sessions/finalize` for `user`.
    func finalize(_ user: String, _ sessionID: String, _ fields: [String: Any]) async throws -> (status: HTTPResponse.Status, json: [String: Any]) {
        try await call(.post, "/api/streaming-sessions/finalize", as: user, fields.merging(["sessionId": sessionID]) { $1 })
    }

    /// The account as stored, without applying due expiries (to see what the sweep did).
    func storedAccount(_ user: String) async throws -> Account? {
        try await store.database.account(user)
    }

    /// A database file no other test uses, in the system's temporary folder.
    static func uniqueDatabasePath() -> String {
        NSTemporaryDirectory() + "accounting-test-\(UUID().uuidString).sqlite3"
    }

    /// Deletes the database file at `path` and SQLite's files beside it.
    static func removeDatabase(at path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }
}

@Suite("accounting stand-in: credits, reservations and usage over SQLite", .serialized)
struct AccountingStandinTests {
    @Test("flow 8: an admin allocates 1000 credits to user1, whose balance shows them; endusers may not allocate")
    func allocation() async throws {
        try await AccountingFixture.with { fixture in
            let allocated = try await fixture.call(
                .post, "/api/credits/allocate", as: "admin", role: .admin,
                ["targetUserId": "user1", "credits": 1000, "expiryDays": 30, "notes": "Testing allocation"]
            )
            #expect(allocated.status == .created)
            #expect(allocated.json["credits"] as? Int == 1000)
            #expect((allocated.json["id"] as? String)?.count == 24)
            #expect((allocated.json["message"] as? String)?.isEmpty == false)

            let balance = try await fixture.call(.get, "/api/credits/balance", as: "user1")
            #expect(balance.status == .ok)
            #expect(balance.json["totalCredits"] as? Int == 1000)
            #expect(balance.json["reservedCredits"] as? Int == 0)
            let allocations = balance.json["activeAllocations"] as? [[String: Any]] ?? []
            #expect(allocations.count == 1)
            #expect(allocations.first?["id"] as? String == allocated.json["id"] as? String)
            #expect(allocations.first?["credits"] as? Int == 1000 && allocations.first?["originalCredits"] as? Int == 1000)
            #expect(allocations.first?["allocatedBy"] as? String == "admin" && allocations.first?["notes"] as? String == "Testing allocation")
            #expect(allocations.first?["createdAt"] as? String == allocated.json["createdAt"] as? String)
            #expect(allocations.first?["expiresAt"] as? String == allocated.json["expiresAt"] as? String)

            let bySupervisor = try await fixture.call(.post, "/api/credits/allocate", as: "supervisor1", role: .supervisor, ["targetUserId": "user1", "credits": 5])
            #expect(bySupervisor.status == .created)
            #expect(try await fixture.balance("user1")[0] == 1005)

            let byEnduser = try await fixture.call(.post, "/api/credits/allocate", as: "user1", ["targetUserId": "user1", "credits": 1000])
            #expect(byEnduser.status == .forbidden)
            for invalid: [String: Any] in [
                ["targetUserId": "user1", "credits": 0], ["targetUserId": "user1", "credits": -5], ["targetUserId": "user1", "credits": 1.5],
                ["targetUserId": "user1", "credits": "many"], ["credits": 10], ["targetUserId": "user1", "credits": 10, "expiryDays": 0],
            ] {
                let reply = try await fixture.call(.post, "/api/credits/allocate", as: "admin", role: .admin, invalid)
                #expect(reply.status == .badRequest, "\(invalid)")
            }
            #expect(try await fixture.balance("user1")[0] == 1005)

            // Twenty first allocations to a new user at once: one creates the account, the others retry onto it.
            let created = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await fixture.call(.post, "/api/credits/allocate", as: "admin", role: .admin, ["targetUserId": "newcomer", "credits": 5]).status
                            == .created
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(created == 20)
            #expect(try await fixture.balance("newcomer") == [100, 0])
        }
    }

    @Test("with a service credential, a user's own token cannot reserve or settle (403), even for their own reservation; the service can, on their behalf")
    func serviceCredentialRequired() async throws {
        let credential = try ServiceCredential(token: String(repeating: "c", count: 40))
        try await AccountingFixture.with(serviceCredential: credential) { fixture in
            try await fixture.fund("payer", 1_000)
            let body: [String: Any] = ["sessionId": "r1", "modelId": AccountingFixture.sonnet, "estimatedTokens": 1_000]
            let byUser = try await fixture.call(.post, "/api/streaming-sessions/initialize", as: "payer", body)
            #expect(byUser.status == .forbidden)
            #expect(byUser.json["code"] as? String == "SERVICE_CREDENTIAL_REQUIRED")
            let wrong = try await fixture.call(.post, "/api/streaming-sessions/initialize", as: "payer", service: String(repeating: "d", count: 40), body)
            #expect(wrong.status == .forbidden)
            #expect(try await fixture.balance("payer") == [1_000, 0])
            let reserved = try await fixture.call(.post, "/api/streaming-sessions/initialize", as: "payer", service: credential.token, body)
            #expect(reserved.status == .created)
            // The attack: the user settles their own reservation for nothing before the worker does.
            let free = ["sessionId": "r1", "actualTokens": 0, "success": true] as [String: Any]
            #expect(try await fixture.call(.post, "/api/streaming-sessions/finalize", as: "payer", free).status == .forbidden)
            let settled = try await fixture.call(
                .post, "/api/streaming-sessions/finalize", as: "payer", service: credential.token,
                ["sessionId": "r1", "inputTokens": 100, "outputTokens": 900, "success": true]
            )
            #expect(settled.status == .ok)
            #expect(settled.json["creditsUsed"] as? Int == 14)
            #expect(settled.json["inputTokens"] as? Int == 100 && settled.json["outputTokens"] as? Int == 900)
            #expect(try await fixture.balance("payer") == [986, 0])
            // Reading the balance and usage stays the user's own business.
            #expect(try await fixture.call(.get, "/api/usage/stats", as: "payer").status == .ok)
        }
    }

    @Test("every endpoint but health wants a valid token: 401 Invalid authentication token")
    func authenticationAndHealth() async throws {
        try await AccountingFixture.with { fixture in
            for path in ["/api/credits/balance", "/api/credits/check", "/api/usage/stats"] {
                let reply = try await fixture.call(.get, path, as: nil)
                #expect(reply.status == .unauthorized)
                #expect(reply.json["message"] as? String == "Invalid authentication token")
            }
            let forged = try AccessTokenVerifier(secret: "another_secret_that_is_long_enough_0123").sign(userID: "admin", role: .admin, lifetime: 60)
            let response = try await fixture.client.execute(uri: "/api/credits/balance", method: .get, headers: [.authorization: "Bearer " + forged])
            #expect(response.status == .unauthorized)
            for path in ["/health", "/api/health"] {
                let health = try await fixture.call(.get, path, as: nil)
                #expect(health.status == .ok)
                #expect(health.json as? [String: String] == ["status": "ok", "service": "accounting-service"])
            }
        }
    }

    @Test("check: sufficient and insufficient, priced from the catalog; initialize beyond the balance is 402")
    func check() async throws {
        try await AccountingFixture.with { fixture in
            try await fixture.fund("user1", 1000)
            let enough = try await fixture.call(.post, "/api/credits/check", as: "user1", ["credits": 500])
            #expect(enough.status == .ok)
            #expect(enough.json["sufficient"] as? Bool == true && enough.json["required"] as? Int == 500 && enough.json["available"] as? Int == 1000)
            let tooMuch = try await fixture.call(.post, "/api/credits/check", as: "user1", ["credits": 5000])
            #expect(tooMuch.json["sufficient"] as? Bool == false && tooMuch.json["available"] as? Int == 1000)
            // 2000 tokens at Claude 3 Sonnet's 15 credits per 1K output tokens.
            let estimate = try await fixture.call(.get, "/api/credits/check?estimatedTokens=2000&modelId=\(AccountingFixture.sonnet)", as: "user1")
            #expect(estimate.json["required"] as? Int == 30 && estimate.json["sufficient"] as? Bool == true)
            let byDefault = try await fixture.call(.get, "/api/credits/check", as: "user1")
            #expect(byDefault.json["required"] as? Int == 1 && byDefault.json["sufficient"] as? Bool == true)
            let unknownModel = try await fixture.call(.post, "/api/credits/check", as: "user1", ["estimatedTokens": 10, "modelId": "invalid-model-id"])
            #expect(unknownModel.status == .badRequest)

            let broke = try await fixture.call(.post, "/api/credits/check", as: "user2", [:])
            #expect(broke.json["sufficient"] as? Bool == false && broke.json["available"] as? Int == 0)
            let refused = try await fixture.initialize("user2", "essay", tokens: 5000)
            #expect(refused.status.code == 402)
            #expect(refused.json["message"] as? String == "Insufficient credits")
            let tooLarge = try await fixture.initialize("user1", "essay", tokens: 100_000)
            #expect(tooLarge.status.code == 402)
            #expect(try await fixture.balance("user1")[0] == 1000)
        }
    }

    @Test("50 concurrent reservations against a balance covering exactly 10: 10 succeed, 40 get 402, never below zero")
    func concurrentReservations() async throws {
        try await AccountingFixture.with { fixture in
            try await fixture.fund("user1", 150)  // 10 reservations of 1000 Sonnet tokens, 15 credits each
            // Half of them through a second store with connections of its own, as another process would.
            let other = try AccountStore(databasePath: fixture.path, reservationTTL: .seconds(900), logger: Logger(label: "other"))
            let sonnet = try #require(ModelCatalog.builtIn.model(id: AccountingFixture.sonnet))
            let lowest = NIOLockedValueBox(Int.max)
            let done = NIOLockedValueBox(false)
            let statuses = try await withThrowingTaskGroup(of: UInt16?.self) { group in
                group.addTask {
                    while !done.withLockedValue({ $0 }) {
                        let balance = try await fixture.balance("user1")
                        lowest.withLockedValue { $0 = min($0, balance[0], balance[1], 150 - balance[0] - balance[1]) }
                    }
                    return nil
                }
                for index in 0..<50 where index % 2 == 0 {
                    group.addTask { UInt16(try await fixture.initialize("user1", "race-\(index)", tokens: 1000).status.code) }
                }
                for index in 0..<50 where index % 2 == 1 {
                    group.addTask {
                        do {
                            _ = try await other.reserve(userID: "user1", sessionID: "race-\(index)", chatSessionID: nil, model: sonnet, estimatedTokens: 1000)
                            return 201
                        } catch let error as ChatError where error.kind == .paymentRequired {
                            return 402
                        }
                    }
                }
                var statuses: [UInt16] = []
                for try await status in group {
                    if let status { statuses.append(status) }
                    if statuses.count == 50 { done.withLockedValue { $0 = true } }
                }
                return statuses
            }
            #expect(statuses.filter { $0 == 201 }.count == 10)
            #expect(statuses.filter { $0 == 402 }.count == 40)
            #expect(lowest.withLockedValue { $0 } >= 0)
            try await other.shutdown()
            #expect(try await fixture.balance("user1") == [0, 150])
            let stored = try await fixture.storedAccount("user1")
            #expect(stored?.available == 0 && stored?.reserved == 150 && stored?.isConsistent == true)

            // Releasing them all gives every credit back.
            for index in 0..<50 {
                _ = try await fixture.finalize("user1", "race-\(index)", ["actualTokens": 0, "success": false])
            }
            #expect(try await fixture.balance("user1") == [150, 0])
        }
    }

    @Test("100 concurrent reservations of one user through one store, balance for 10: exactly 10, one write each, never below zero")
    func concurrentReservationsOneStore() async throws {
        try await AccountingFixture.with { fixture in
            try await fixture.fund("user1", 150)
            let writesBefore = fixture.store.counters.snapshot.writes
            let created = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<100 {
                    group.addTask { try await fixture.initialize("user1", "one-\(index)", tokens: 1000).status == .created }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(created == 10)
            // One write per accepted reservation; the 90 refusals wrote nothing.
            #expect(fixture.store.counters.snapshot.writes - writesBefore == 10)
            let stored = try await fixture.storedAccount("user1")
            #expect(stored?.available == 0 && stored?.reserved == 150 && stored?.isConsistent == true)
            #expect(try await fixture.balance("user1") == [0, 150])
        }
    }

    @Test("a new store over the same database (a restart) sees every acknowledged change, and archives what the first left")
    func restartSeesAcknowledgedChanges() async throws {
        try await AccountingFixture.with { fixture in
            try await fixture.fund("user1", 1000)
            #expect(try await fixture.initialize("user1", "kept-open", tokens: 2000).status == .created)
            #expect(try await fixture.initialize("user1", "settled", tokens: 2000).status == .created)
            let settled = try await fixture.finalize("user1", "settled", ["actualTokens": 356])
            #expect(settled.json["creditsUsed"] as? Int == 6)
            // No flush, no shutdown: what was answered must already be in the database.
            let restarted = try AccountStore(databasePath: fixture.path, reservationTTL: .seconds(900), logger: Logger(label: "restarted"))
            let account = try await restarted.account("user1")
            #expect(account.available == 1000 - 30 - 6 && account.reserved == 30)
            let again = try await restarted.finalize(
                userID: "user1", sessionID: "settled", usage: TokenUsage(inputTokens: 0, outputTokens: 2000), model: nil, success: true
            )
            #expect(again.status == .finalized && again.settlement?.creditsUsed == 6 && again.settlement?.refund == 24)
            do {
                let sonnet = try #require(ModelCatalog.builtIn.model(id: AccountingFixture.sonnet))
                _ = try await restarted.reserve(userID: "user1", sessionID: "settled", chatSessionID: nil, model: sonnet, estimatedTokens: 2000)
                Issue.record("a settled session was reserved again")
            } catch let error as ChatError {
                #expect(error.kind == .conflict)
            }
            let closed = try await restarted.finalize(
                userID: "user1", sessionID: "kept-open", usage: TokenUsage(inputTokens: 0, outputTokens: 1000), model: nil, success: true
            )
            #expect(closed.settlement?.creditsUsed == 15 && closed.settlement?.refund == 15)
            // The first store's copy is now behind: its next change conflicts, reads again and still adds up.
            let conflictsBefore = fixture.store.counters.snapshot.conflicts
            #expect(try await fixture.initialize("user1", "after", tokens: 1000).status == .created)
            #expect(fixture.store.counters.snapshot.conflicts > conflictsBefore)
            #expect(try await fixture.balance("user1") == [1000 - 6 - 15 - 15, 15])
            // Sweeping archives the settled entries and prunes them from the document; statistics count both.
            try await restarted.tidy("user1")
            #expect(try await fixture.storedAccount("user1")?.settledEntries.isEmpty == true)
            let stats = try await fixture.call(.get, "/api/usage/stats", as: "user1")
            #expect(stats.json["totalRequests"] as? Int == 2 && stats.json["totalCreditsUsed"] as? Int == 21)
            try await restarted.shutdown()
        }
    }

    @Test("a write from outside the store is detected: a refusal is decided again on the stored document, a change retried on it")
    func outsideWriteDetected() async throws {
        try await AccountingFixture.with { fixture in
            try await fixture.fund("user2", 30)
            #expect(try await fixture.initialize("user2", "first", tokens: 2000).status == .created)  // 30: nothing left
            // Another process adds 45 credits and bumps the version, behind the store's back, through a connection
            // of its own.
            let now = fixture.store.now
            let outside = try AccountDatabase(path: fixture.path, logger: Logger(label: "outside"))
            var changed = try #require(try await outside.account("user2"))
            changed.allocate(
                Allocation(
                    id: ObjectID.make(now: now), originalCredits: 45, remaining: 45, expiresAt: now.addingTimeInterval(86_400), notes: nil,
                    allocatedBy: "shell", createdAt: now
                )
            )
            changed.version += 1
            #expect(try await outside.commit(.account(changed, expectedVersion: changed.version - 1, at: now)) == .applied)
            // The store's copy says 0 left: the 402 it would give is checked against the document, which has 45.
            let rereadsBefore = fixture.store.counters.snapshot.rereads
            #expect(try await fixture.initialize("user2", "second", tokens: 2000).status == .created)
            #expect(fixture.store.counters.snapshot.rereads > rereadsBefore)
            // Another outside bump: the next change's conditional write conflicts, and is made on the new document.
            let bumped = try await outside.read { connection in
                try connection.run("UPDATE accounts SET version = version + 1 WHERE user_id = ?", [.text("user2")])
            }
            #expect(bumped == 1)
            try await outside.shutdown()
            let conflictsBefore = fixture.store.counters.snapshot.conflicts
            let settled = try await fixture.finalize("user2", "first", ["actualTokens": 1000])
            #expect(settled.status == .ok && settled.json["creditsUsed"] as? Int == 15 && settled.json["refund"] as? Int == 15)
            #expect(fixture.store.counters.snapshot.conflicts == conflictsBefore + 1)
            let stored = try await fixture.storedAccount("user2")
            #expect(stored?.available == 30 && stored?.reserved == 30 && stored?.allocations.count == 2 && stored?.isConsistent == true)
        }
    }

    @Test("a write the database refuses fails alone; the others committed with it stand", .timeLimit(.minutes(1)))
    func oneRefusedWriteFailsAlone() async throws {
        let path = AccountingFixture.uniqueDatabasePath()
        defer { AccountingFixture.removeDatabase(at: path) }
        let database = try AccountDatabase(path: path, logger: Logger(label: "test"))
        let now = Date()
        // Hold the database's thread, so that the three writes below queue and go in one transaction.
        let gate = ThreadGate()
        let holding = Task { try await database.read { _ in gate.hold() } }
        try #require(try await eventually { gate.isHeld })
        var account = Account.empty("holder")
        account.allocate(Allocation(id: ObjectID.make(now: now), originalCredits: 5, remaining: 5, expiresAt: now.addingTimeInterval(3600), notes: nil, allocatedBy: "test", createdAt: now))
        account.version = 1
        var good = LedgerEntry(
            id: ObjectID.make(now: now), kind: .record, status: .finalized, sessionID: "s-1", chatSessionID: nil, service: "chat-service",
            operation: "test", modelID: nil, estimatedTokens: nil, reservedCredits: 0, held: 0, draws: [], createdAt: now, expiresAt: now, settlement: nil
        )
        var bad = good
        bad.id = "not an object id"  // BSON cannot store it: this write fails when it is made
        bad.sessionID = "s-2"
        good.sessionID = "s-3"
        let held = account
        let (refused, kept) = (bad, good)
        let first = Task { try await database.commit(.account(held, expectedVersion: 0, at: now)) }
        try #require(try await eventually { database.queuedJobs == 1 })
        let second = Task { try await database.commit(.usage(refused, userID: "holder")) }
        try #require(try await eventually { database.queuedJobs == 2 })
        let third = Task { try await database.commit(.usage(kept, userID: "holder")) }
        try #require(try await eventually { database.queuedJobs == 3 })
        gate.open()
        try await holding.value
        #expect(try await first.value == .applied)
        await #expect(throws: ChatError.self) { try await second.value }
        #expect(try await third.value == .applied)
        #expect(try await database.account("holder")?.available == 5)
        #expect(try await database.archivedEntry(userID: "holder", sessionID: "s-3")?.id == good.id)
        #expect(try await database.archivedEntry(userID: "holder", sessionID: "s-2") == nil)
        try await database.shutdown()
        try await database.shutdown()  // a second shutdown is harmless
        await #expect(throws: ChatError.self) { try await database.ping() }
    }

    @Test("a long statistics read does not hold up the writes; it sees what was committed before it", .timeLimit(.minutes(1)))
    func statisticsDoNotHoldUpWrites() async throws {
        let path = AccountingFixture.uniqueDatabasePath()
        defer { AccountingFixture.removeDatabase(at: path) }
        let database = try AccountDatabase(path: path, logger: Logger(label: "test"))
        let now = Date()
        let gate = ThreadGate()
        let scan = Task {
            try await database.readStatistics { connection in
                gate.hold()
                return try connection.rows("SELECT COUNT(*) FROM accounts") { $0.integer(0) }.first ?? -1
            }
        }
        try #require(try await eventually { gate.isHeld })
        var account = Account.empty("writer")
        account.version = 1
        // Committed while the scan holds its thread.
        #expect(try await database.commit(.account(account, expectedVersion: 0, at: now)) == .applied)
        gate.open()
        _ = try await scan.value
        #expect(try await database.balances().accounts == 1)
        try await database.shutdown()
        await #expect(throws: ChatError.self) { try await database.balances() }
    }

    /// Holds one of the database's threads from inside a call, until the test opens it.
    final class ThreadGate: Sendable {
        private let held = NIOLockedValueBox(false)
        private let opened = NIOLockedValueBox(false)

        /// Whether a call is holding its thread now.
        var isHeld: Bool { held.withLockedValue { $0 } }

        /// Blocks the calling thread (a database thread, never an event loop) until `open()`.
        func hold() {
            held.withLockedValue { $0 = true }
            while !opened.withLockedValue({ $0 }) { usleep(1000) }
        }

        /// Lets the held call go on.
        func open() { opened.withLockedValue { $0 = true } }
    }

    @Test("finalize charges the actual cost, refunds the rest once, and answers the same when repeated")
    func finalizeOnce() async throws {
        try await AccountingFixture.with { fixture in
            try await fixture.fund("user1", 1000)
            let reserved = try await fixture.initialize("user1", "stream-1", tokens: 2000)
            #expect(reserved.status == .created && reserved.json["allocatedCredits"] as? Int == 30)
            #expect(try await fixture.balance("user1") == [970, 30])

            // 356 tokens at 15 credits per 1K: 5.34, rounded up to 6.
            let first = try await fixture.finalize("user1", "stream-1", ["actualTokens": 356, "success": true])
            #expect(first.status == .ok)
            #expect(first.json["status"] as? String == "finalized" && first.json["creditsUsed"] as? Int == 6 && first.json["refund"] as? Int == 24)
            let again = try await fixture.finalize("user1", "stream-1", ["actualTokens": 2000, "success": true])
            #expect(again.status == .ok && AccountingFixture.text(again.json) == AccountingFixture.text(first.json))
            #expect(try await fixture.balance("user1") == [994, 0])

            // Two finalizes at once: one settles, both answer the same, one refund.
            _ = try await fixture.initialize("user1", "stream-2", tokens: 2000)
            async let one = fixture.finalize("user1", "stream-2", ["actualTokens": 100])
            async let two = fixture.finalize("user1", "stream-2", ["actualTokens": 100])
            let (a, b) = try await (one, two)
            #expect(a.status == .ok && AccountingFixture.text(a.json) == AccountingFixture.text(b.json))
            #expect(try await fixture.balance("user1") == [992, 0])

            #expect(try await fixture.finalize("user1", "never-initialized", ["actualTokens": 1]).status == .notFound)
            #expect(try await fixture.finalize("user2", "stream-1", ["actualTokens": 1]).status == .notFound)
            #expect(try await fixture.initialize("user1", "stream-1", tokens: 2000).status == .conflict)

            // The same open reservation twice is answered again and held once; different terms are 409.
            let repeatOne = try await fixture.initialize("user1", "stream-3", tokens: 1000)
            let repeatTwo = try await fixture.initialize("user1", "stream-3", tokens: 1000)
            #expect(repeatOne.status == .created && repeatTwo.status == .created && repeatTwo.json["allocatedCredits"] as? Int == 15)
            #expect(try await fixture.initialize("user1", "stream-3", tokens: 999).status == .conflict)
            #expect(try await fixture.balance("user1") == [977, 15])

            // success:false charges the tokens used so far; input and output tokens are priced apart (3 + 15).
            let failed = try await fixture.finalize("user1", "stream-3", ["actualTokens": 100, "success": false])
            #expect(failed.json["creditsUsed"] as? Int == 2 && failed.json["refund"] as? Int == 13 && failed.json["success"] as? Bool == false)
            _ = try await fixture.initialize("user1", "stream-4", tokens: 2000)
            let split = try await fixture.finalize("user1", "stream-4", ["actualTokens": 2000, "inputTokens": 1000, "outputTokens": 1000])
            #expect(split.json["creditsUsed"] as? Int == 18 && split.json["refund"] as? Int == 12)
        }
    }

    @Test("a cost above the reservation takes the excess from the balance, capped at what is there")
    func excessCost() async throws {
        try await AccountingFixture.with { fixture in
            try await fixture.fund("user3", 10)
            #expect(try await fixture.initialize("user3", "short", tokens: 100).json["allocatedCredits"] as? Int == 2)
            let covered = try await fixture.finalize("user3", "short", ["actualTokens": 400])  // 6 credits: 2 held + 4 more
            #expect(covered.json["creditsUsed"] as? Int == 6 && covered.json["actualCost"] as? Int == 6 && covered.json["refund"] as? Int == 0)
            #expect(try await fixture.balance("user3") == [4, 0])
            _ = try await fixture.initialize("user3", "long", tokens: 100)
            let capped = try await fixture.finalize("user3", "long", ["actualTokens": 1000])  // 15 credits, 4 there
            #expect(capped.json["creditsUsed"] as? Int == 4 && capped.json["actualCost"] as? Int == 15)
            #expect(try await fixture.balance("user3") == [0, 0])
        }
    }

    @Test("a reservation never finalized expires after the TTL: the sweep refunds it, status expired")
    func reservationExpires() async throws {
        try await AccountingFixture.with(ttl: .seconds(1), sweepInterval: .milliseconds(100)) { fixture in
            try await fixture.fund("user1", 100)
            #expect(try await fixture.initialize("user1", "abandoned", tokens: 2000).status == .created)
            #expect(try await fixture.storedAccount("user1")?.available == 70)
            // Read the stored document only, so that the refund is the sweep's and not a read's.
            let deadline = Date().addingTimeInterval(10)
            while try await fixture.storedAccount("user1")?.available != 100, Date() < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            let stored = try await fixture.storedAccount("user1")
            #expect(stored?.available == 100 && stored?.reserved == 0)
            let late = try await fixture.finalize("user1", "abandoned", ["actualTokens": 500])
            #expect(late.status == .ok && late.json["status"] as? String == "expired")
            #expect(late.json["creditsUsed"] as? Int == 0 && late.json["refund"] as? Int == 30)
            #expect(try await fixture.balance("user1") == [100, 0])
            #expect(try await fixture.call(.get, "/api/usage/stats", as: "user1").json["totalRequests"] as? Int == 0)
        }
    }

    @Test("without a sweep, reading the balance expires a reservation past its deadline")
    func expiryOnRead() async throws {
        try await AccountingFixture.with(ttl: .seconds(60)) { fixture in
            try await fixture.fund("user1", 100)
            _ = try await fixture.initialize("user1", "stale", tokens: 2000)
            fixture.clock.advance(61)
            #expect(try await fixture.balance("user1") == [100, 0])
            #expect(try await fixture.finalize("user1", "stale", ["actualTokens": 10]).json["status"] as? String == "expired")
        }
    }

    @Test("the same reservation asked again extends it to a full lifetime from then: a long reply's credits stay held until it settles")
    func repeatedInitializeExtends() async throws {
        try await AccountingFixture.with(ttl: .seconds(60)) { fixture in
            try await fixture.fund("user1", 100)
            #expect(try await fixture.initialize("user1", "long", tokens: 2000).status == .created)
            fixture.clock.advance(50)
            #expect(try await fixture.initialize("user1", "long", tokens: 2000).status == .created)
            fixture.clock.advance(50)  // past the first deadline, within the extended one
            #expect(try await fixture.balance("user1") == [70, 30])
            let settled = try await fixture.finalize("user1", "long", ["actualTokens": 500])
            #expect(settled.json["status"] as? String != "expired" && (settled.json["creditsUsed"] as? Int ?? 0) > 0)
            // Other terms are still a conflict, not an extension.
            #expect(try await fixture.initialize("user1", "long", tokens: 1000).status == .conflict)
        }
    }

    @Test("an allocation past its expiry days leaves the balance; credits it lent to a reservation are forfeited")
    func allocationExpiry() async throws {
        try await AccountingFixture.with(ttl: .seconds(7 * 86_400)) { fixture in
            try await fixture.fund("user1", 100, days: 1)
            try await fixture.fund("user1", 50, days: 30)
            // 8000 Sonnet tokens reserve 120 credits: the 100 expiring first, then 20 of the other.
            #expect(try await fixture.initialize("user1", "long-run", tokens: 8000).json["allocatedCredits"] as? Int == 120)
            fixture.clock.advance(2 * 86_400)
            let balance = try await fixture.call(.get, "/api/credits/balance", as: "user1")
            #expect(balance.json["totalCredits"] as? Int == 30 && (balance.json["activeAllocations"] as? [Any])?.count == 1)
            // 30 used; of the 90 released, 20 go back to the live allocation and 70 belonged to the expired one.
            let settled = try await fixture.finalize("user1", "long-run", ["actualTokens": 2000])
            #expect(settled.json["creditsUsed"] as? Int == 30 && settled.json["refund"] as? Int == 20)
            #expect(settled.json["forfeitedCredits"] as? Int == 70)
            #expect(try await fixture.balance("user1") == [50, 0])
        }
    }

    @Test("usage: records and finalized sessions in the stats; others' stats for supervisors; system stats for admins")
    func usageStats() async throws {
        try await AccountingFixture.with { fixture in
            try await fixture.fund("user1", 1000)
            _ = try await fixture.initialize("user1", "chat-1", tokens: 2000)
            _ = try await fixture.finalize("user1", "chat-1", ["actualTokens": 456, "inputTokens": 100, "outputTokens": 356])  // 0.3 + 5.34 → 6
            let recorded = try await fixture.call(
                .post, "/api/usage/record", as: "user1",
                ["service": "chat-service", "operation": "message", "credits": 10, "tokens": 500, "modelId": AccountingFixture.haiku]
            )
            #expect(recorded.status == .created)
            let tokensOnly = try await fixture.call(.post, "/api/usage/record", as: "user1", ["service": "chat-service", "operation": "message", "tokens": 40])
            #expect(tokensOnly.status == .created)
            #expect(try await fixture.call(.post, "/api/usage/record", as: "user1", ["service": "chat-service"]).status == .badRequest)
            #expect(try await fixture.call(.post, "/api/usage/record", as: "user2", ["credits": 5]).status.code == 402)
            #expect(try await fixture.balance("user1") == [984, 0])

            let own = try await fixture.call(.get, "/api/usage/stats", as: "user1")
            #expect(own.status == .ok)
            #expect(own.json["totalCreditsUsed"] as? Int == 16 && own.json["totalRequests"] as? Int == 3 && own.json["totalTokens"] as? Int == 996)
            let models = (own.json["byModel"] as? [[String: Any]] ?? []).compactMap { $0["modelId"] as? String }
            #expect(models == [AccountingFixture.haiku, AccountingFixture.sonnet, "unspecified"])
            let days = own.json["byDay"] as? [[String: Any]] ?? []
            #expect(days.count == 1 && days.first?["date"] as? String == StoredAccount.day(Date()) && days.first?["credits"] as? Int == 16)

            let bySupervisor = try await fixture.call(.get, "/api/usage/stats/user1", as: "supervisor1", role: .supervisor)
            #expect(bySupervisor.status == .ok && bySupervisor.json["totalCreditsUsed"] as? Int == 16)
            #expect(try await fixture.call(.get, "/api/usage/stats/user1", as: "user2").status == .forbidden)
            #expect(try await fixture.call(.get, "/api/usage/stats/user1", as: "user1").status == .ok)

            let system = try await fixture.call(.get, "/api/usage/system-stats", as: "admin", role: .admin)
            #expect(system.status == .ok && system.json["totalCreditsUsed"] as? Int == 16 && system.json["activeUsers"] as? Int == 1)
            #expect((system.json["accounts"] as? [String: Any])?["availableCredits"] as? Int == 984)
            #expect(try await fixture.call(.get, "/api/usage/system-stats", as: "supervisor1", role: .supervisor).status == .forbidden)
            #expect(try await fixture.call(.get, "/api/usage/system-stats", as: "user1").status == .forbidden)
        }
    }

    @Test("prices round up from exact integer arithmetic; settings are checked at start")
    func pricingAndConfiguration() throws {
        let sonnet = try #require(ModelCatalog.builtIn.model(id: AccountingFixture.sonnet))
        let micro = try #require(ModelCatalog.builtIn.model(id: "amazon.nova-micro-v1:0"))
        #expect(Pricing.estimate(tokens: 2000, model: sonnet) == 30)
        #expect(Pricing.estimate(tokens: 0, model: sonnet) == 1)
        #expect(Pricing.cost(TokenUsage(inputTokens: 0, outputTokens: 0), model: sonnet) == 0)
        #expect(Pricing.cost(TokenUsage(inputTokens: 0, outputTokens: 50_000), model: micro) == 7)
        #expect(Pricing.cost(TokenUsage(inputTokens: 1, outputTokens: 0), model: micro) == 1)

        let secret = ["JWT_ACCESS_SECRET": AccountingFixture.secret]
        let defaults = try AccountingConfiguration(environment: Environment(secret))
        #expect(defaults.port == 3001 && defaults.databasePath == ".data/accounting/accounting.sqlite3" && defaults.reservationTTL == .seconds(900))
        let elsewhere = try AccountingConfiguration(environment: Environment(secret.merging(["ACCOUNTING_DATABASE_PATH": "/var/lib/a.db"]) { $1 }))
        #expect(elsewhere.databasePath == "/var/lib/a.db")
        #expect(throws: ConfigurationError.self) { try AccountingConfiguration(environment: Environment([:])) }
        #expect(throws: ConfigurationError.self) { try AccountingConfiguration(environment: Environment(["JWT_ACCESS_SECRET": "short"])) }
        #expect(throws: ConfigurationError.self) {
            try AccountingConfiguration(environment: Environment(secret.merging(["RESERVATION_TTL_SECONDS": "0"]) { $1 }))
        }
    }
}

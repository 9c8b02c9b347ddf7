import Accounting
import AsyncHTTPClient
import ChatCore
import ChatStore
import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import ChatState
@testable import Queue

/// A built executable of this package (`CHAT_API_BIN`, `CHAT_WORKER_BIN`), run as a child process.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: the process and its pipe are only used by the test that owns them, one call at a time; the
    // output read so far is behind a lock.
    let process = Process()
    private let output = Pipe()
    private let printed = NIOLockedValueBox(Data())
    /// Set once the pipe reached its end (every writer closed it): all the output is in `printed`.
    private let drained = NIOLockedValueBox(false)

    init(executable: String, environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = output
        process.standardError = output
        // Read as it comes: a child whose output filled the pipe would block in its next log line.
        output.fileHandleForReading.readabilityHandler = { [printed, drained] handle in
            let chunk = handle.availableData
            guard !chunk.isEmpty else {
                // The end: no more calls, and the reader is the only one that ever touched the pipe.
                handle.readabilityHandler = nil
                drained.withLockedValue { $0 = true }
                return
            }
            printed.withLockedValue { $0.append(chunk) }
        }
        try process.run()
    }

    /// Whether the process still runs.
    var isRunning: Bool { process.isRunning }

    /// What the process printed until now.
    var printedSoFar: String { printed.withLockedValue { String(decoding: $0, as: UTF8.self) } }

    /// Waits for the process to exit (at most `limit`), returning its status and everything it printed.
    func waitForExit(limit: Duration = .seconds(30)) async throws -> (status: Int32, output: String) {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while process.isRunning, clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            process.terminate()
            Issue.record("the process did not exit within \(limit)")
        }
        process.waitUntilExit()
        // The reader takes what the process wrote last; the pipe ends once the process (and any child) is gone.
        let drainDeadline = clock.now + .seconds(5)
        while !drained.withLockedValue({ $0 }), clock.now < drainDeadline { try await Task.sleep(for: .milliseconds(10)) }
        let text = printed.withLockedValue { String(decoding: $0, as: UTF8.self) }
        return (process.terminationStatus, text)
    }

    /// Sends a signal.
    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    static func binary(_ name: String) -> String {
        ProcessInfo.processInfo.environment[name] ?? ".build/debug/\(["CHAT_API_BIN": "chat-api", "CHAT_WORKER_BIN": "chat-worker", "ACCOUNTING_STANDIN_BIN": "accounting-standin"][name] ?? name)"
    }
}

@Suite("chat-api and chat-worker as processes", .serialized)
struct ProcessTests {
    @Test("chat-api refuses a JWT secret shorter than 32 bytes at start, with one clear line")
    func shortSecretRefused() async throws {
        let api = try ChildProcess(
            executable: ChildProcess.binary("CHAT_API_BIN"),
            environment: ["JWT_ACCESS_SECRET": "short", "PORT": String(TestEnvironment.freePort())]
        )
        let (status, output) = try await api.waitForExit(limit: .seconds(10))
        #expect(status != 0)
        #expect(output.contains("JWT_ACCESS_SECRET must be at least 32 bytes long"))
    }

    @Test("chat-api and chat-worker refuse the published development secret unless ALLOW_DEVELOPMENT_SECRETS is set", arguments: [
        "CHAT_API_BIN", "CHAT_WORKER_BIN",
    ])
    func publishedSecretRefused(binary: String) async throws {
        let own = String(repeating: "s", count: 40)
        for (setting, published) in [
            ("JWT_ACCESS_SECRET", "dev_access_secret_key_change_this_in_production"),
            ("JWT_ACCESS_SECRET", "dev_refresh_secret_key_change_this_in_production"),
            ("ACCOUNTING_SERVICE_TOKEN", "dev_accounting_service_token_change_this_in_production"),
        ] {
            var environment = [
                "JWT_ACCESS_SECRET": own, "ACCOUNTING_SERVICE_TOKEN": "", "ALLOW_DEVELOPMENT_SECRETS": "false",
                "PORT": String(TestEnvironment.freePort()), "WORKER_METRICS_PORT": "0",
            ]
            environment[setting] = published
            let process = try ChildProcess(executable: ChildProcess.binary(binary), environment: environment)
            let (status, output) = try await process.waitForExit(limit: .seconds(10))
            #expect(status == 2)
            #expect(output.contains("\(setting) is a development secret this repository publishes"))
        }
        // The same secret with the development setting: the process starts (it is stopped once it serves).
        let allowed = try ChildProcess(
            executable: ChildProcess.binary(binary),
            environment: [
                "JWT_ACCESS_SECRET": APIFixture.secret, "ALLOW_DEVELOPMENT_SECRETS": "true", "PORT": String(TestEnvironment.freePort()),
                "WORKER_METRICS_PORT": "0", "REDIS_URL": TestEnvironment.redisURL, "MONGO_URI": MongoSessionStoreTests.uniqueDatabaseURI(),
                "JOB_STREAM": uniqueKey("jobs"),
            ]
        )
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        let serving = binary == "CHAT_API_BIN" ? "Server started" : "health and metrics served"
        while allowed.isRunning, clock.now < deadline, !allowed.printedSoFar.contains(serving) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(allowed.isRunning && allowed.printedSoFar.contains(serving), "it did not start: \(allowed.printedSoFar)")
        allowed.signal(SIGTERM)
        let (_, output) = try await allowed.waitForExit(limit: .seconds(20))
        #expect(!output.contains("configuration error"))
    }

    @Test("chat-api refuses a bad setting at start", arguments: [
        ["PORT": "http"], ["REDIS_URL": "localhost:6379"], ["JWT_ACCESS_SECRET": ""], ["ACCOUNTING_MAX_CONNECTIONS": "0"], ["ACCOUNTING_MAX_CONNECTIONS": "many"],
    ])
    func badSettingRefused(setting: [String: String]) async throws {
        var environment = ["JWT_ACCESS_SECRET": String(repeating: "s", count: 40)]
        environment.merge(setting) { $1 }
        let api = try ChildProcess(executable: ChildProcess.binary("CHAT_API_BIN"), environment: environment)
        let (status, output) = try await api.waitForExit(limit: .seconds(10))
        #expect(status == 2)
        #expect(output.contains("configuration error"))
        #expect(output.contains(setting.keys.first!))
    }

    @Test("chat-worker runs a job through Bedrock (the emulator) into the session's events and store, and drains on SIGTERM")
    func workerRunsJobAndDrains() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let consumer = uniqueKey("worker")
        let stream = uniqueKey("jobs")
        let queue = JobQueue<InferenceJob>(redis: redis, configuration: JobQueueConfiguration(stream: stream, deadLetterStream: stream + ":dead"))
        try await queue.prepare()
        let database = MongoSessionStoreTests.uniqueDatabaseURI()
        let worker = try ChildProcess(
            executable: ChildProcess.binary("CHAT_WORKER_BIN"),
            environment: [
                "REDIS_URL": TestEnvironment.redisURL, "MONGO_URI": database, "WORKER_CONCURRENCY": "4",
                "WORKER_CONSUMER_NAME": consumer, "JOB_VISIBILITY_TIMEOUT_MS": "5000", "JOB_STREAM": stream, "JWT_ACCESS_SECRET": APIFixture.secret,
                "ACCOUNTING_URL": TestEnvironment.accountingURL, "LOG_LEVEL": "warning",
            ]
        )
        let store = try MongoSessionStore(configuration: MongoConfiguration(uri: database, threadCount: 1))
        let user = "worker-\(UUID().uuidString.prefix(8))"
        let sessionID = try await store.createSession(userId: user, title: "worker test", modelId: nil).id
        let jobID = UUID().uuidString.lowercased()
        let verifier = try AccessTokenVerifier(secret: APIFixture.secret)
        try await Accounting.fund(user, credits: 100, accountingURL: TestEnvironment.accountingURL, verifier: verifier)
        let ledger = AccountingClient(baseURL: TestEnvironment.accountingURL, httpClient: HTTPClient.shared, serviceCredential: TestEnvironment.serviceCredential)
        let token = verifier.sign(userID: user, role: .enduser, lifetime: 300)
        let reservation = try await ledger.reserve(reservationID: jobID, sessionID: sessionID, modelID: ModelCatalog.builtIn.defaultModelID, estimatedTokens: 2_000, token: token)
        #expect(reservation.allocatedCredits > 0)
        // Begun as chat-api begins a job (the session claimed, the job recorded), then enqueued.
        let session = try #require(try await store.session(id: sessionID))
        let state = GenerationState(redis: redis)
        try await state.cache.fill(session)
        guard case .started = try await state.begin(
            jobID: jobID, sessionID: sessionID, userID: user, requestedModel: nil, defaultModel: ModelCatalog.builtIn.defaultModelID,
            message: "one two three [[tokens:6]] [[tps:20]]", messageID: ObjectIDs.next()
        ) else { throw TestFailure("the job did not begin") }
        try await queue.enqueue(
            id: jobID,
            payload: InferenceJob(
                sessionId: sessionID, userId: user, modelId: ModelCatalog.builtIn.defaultModelID, message: "one two three [[tokens:6]] [[tps:20]]", streaming: true
            )
        )
        // Ask the worker to stop as soon as the job has started: it must finish the job first.
        let seen = try await withTimeout(.seconds(30)) {
            try await withEventHub { hub, _ in
                var seen: [SessionEvent] = []
                for await event in try await hub.subscribe(sessionID: sessionID, after: "0-0") where !event.isHeartbeat {
                    seen.append(event)
                    if event.type == "chunk" && seen.filter({ $0.type == "chunk" }).count == 1 { worker.signal(SIGTERM) }
                    if event.type == "complete" || event.type == "error" { break }
                }
                return seen
            }
        }
        let (status, output) = try await worker.waitForExit(limit: .seconds(30))
        #expect(status == 0, "worker output: \(output)")
        #expect(seen.map(\.type) == ["model"] + Array(repeating: "chunk", count: 6) + ["complete"])
        let text = seen.filter { $0.type == "chunk" }.compactMap { event in
            (try? JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? [String: Any])?["content"] as? String
        }.joined()
        let complete = (try? JSONSerialization.jsonObject(with: Data(seen.last!.data.utf8))) as? [String: Any] ?? [:]
        #expect(complete["content"] as? String == text)
        #expect(complete["outputTokens"] as? Int == 6)
        #expect(text.split(separator: " ").count == 6)
        #expect(Set(seen.map(\.jobID)) == [jobID])
        let pending = try await redis.xpending(stream, group: "chat-workers", consumer: consumer)
        #expect(pending.isEmpty)
        let stored = try await store.messages(sessionId: sessionID)
        #expect(stored.map(\.role) == [.user, .assistant])
        #expect(stored.last?.content == text)
        #expect(stored.last?.outputTokens == 6)
        // Finalized once: a second finalize refunds nothing more.
        let again = try await ledger.finalize(reservationID: jobID, modelID: ModelCatalog.builtIn.defaultModelID, inputTokens: 0, outputTokens: 0, success: true, token: token)
        #expect(again.creditsUsed == (complete["creditsCharged"] as? Double ?? Double(complete["creditsCharged"] as? Int ?? -1)))
        try await store.dropDatabase()
        try await store.shutdown()
    }
}

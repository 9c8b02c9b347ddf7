import ChatStore
import Foundation
import Testing

/// One chat-api and one chat-worker as processes, on a jobs stream and a database of their own, over the Redis,
/// MongoDB, emulator and stand-ins that `make test` started; the worker's health and metrics on a port of its own.
final class ServicePair: @unchecked Sendable {
    // @unchecked: the processes are only used by the test that owns the pair, one call at a time.
    let apiPort = TestEnvironment.freePort()
    let workerPort = TestEnvironment.freePort()
    let database = MongoSessionStoreTests.uniqueDatabaseURI()
    let api: ChildProcess
    let worker: ChildProcess

    var apiURL: String { "http://127.0.0.1:\(apiPort)" }
    var workerURL: String { "http://127.0.0.1:\(workerPort)" }

    /// Starts both with `LOG_LEVEL` `logLevel`, each with its own extra settings; `ready()` waits for them.
    init(logLevel: String = "warning", apiEnvironment: [String: String] = [:], workerEnvironment: [String: String] = [:]) throws {
        let environment = [
            "REDIS_URL": TestEnvironment.redisURL, "MONGO_URI": database, "JWT_ACCESS_SECRET": APIFixture.secret,
            "ACCOUNTING_URL": TestEnvironment.accountingURL, "JOB_STREAM": uniqueKey("pair-jobs"), "LOG_LEVEL": logLevel,
            "RATE_LIMIT_ENABLED": "false", "LOG_FORMAT": "json",
        ]
        api = try ChildProcess(
            executable: ChildProcess.binary("CHAT_API_BIN"),
            environment: environment.merging(["PORT": String(apiPort), "HOST": "127.0.0.1"]) { $1 }.merging(apiEnvironment) { $1 }
        )
        worker = try ChildProcess(
            executable: ChildProcess.binary("CHAT_WORKER_BIN"),
            environment: environment.merging(["WORKER_METRICS_PORT": String(workerPort), "WORKER_METRICS_HOST": "127.0.0.1"]) { $1 }
                .merging(workerEnvironment) { $1 }
        )
    }

    /// Waits until both answer `/readyz`.
    func ready() async throws {
        try await expectEventually(.seconds(30)) { [apiURL] in (try? await HTTPProbe.status(apiURL + "/readyz")) == 200 }
        try await expectEventually(.seconds(30)) { [workerURL] in (try? await HTTPProbe.status(workerURL + "/readyz")) == 200 }
    }

    /// Stops both gracefully (SIGTERM) and returns what each printed; drops the database.
    func stop() async throws -> (api: String, worker: String) {
        api.signal(SIGTERM)
        worker.signal(SIGTERM)
        let apiOutput = try await api.waitForExit().output
        let workerOutput = try await worker.waitForExit().output
        let store = try MongoSessionStore(configuration: MongoConfiguration(uri: database, threadCount: 1))
        try await store.dropDatabase()
        try await store.shutdown()
        return (apiOutput, workerOutput)
    }

    /// Kills both at once (a test that failed half-way).
    func kill() {
        for process in [api, worker] where process.isRunning { process.signal(SIGKILL) }
    }
}

/// A `ServicePair` for one test body, stopped (or killed, on failure) afterwards.
enum APIProcess {
    static func withPair(_ body: (ServicePair) async throws -> Void) async throws {
        let pair = try ServicePair()
        do {
            try await pair.ready()
            try await body(pair)
        } catch {
            pair.kill()
            throw error
        }
        _ = try await pair.stop()
    }
}

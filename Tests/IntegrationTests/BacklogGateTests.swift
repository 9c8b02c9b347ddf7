import ChatCore
import Foundation
import Testing

@testable import API
@testable import Queue

@Suite("The backlog gate's cached count", .timeLimit(.minutes(1)))
struct BacklogGateTests {
    /// A gate over a job queue on a Redis server of its own (DEBUG SLEEP stalls the whole server), given to `body`;
    /// the server stops when `body` ends.
    private func withGateOnOwnServer(
        maxWaiting: Int, refresh: Duration, maxAge: Duration, _ body: (BacklogGate, RedisClient) async throws -> Void
    ) async throws {
        let server = try await ManagedServer.redis(port: TestEnvironment.freePort(), extraArguments: ["--enable-debug-command", "local"])
        let redis = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: server.port))
        do {
            let stream = uniqueKey("jobs")
            let queue = JobQueue<InferenceJob>(redis: redis, configuration: JobQueueConfiguration(stream: stream, deadLetterStream: stream + ":dead"))
            try await queue.prepare()
            try await body(BacklogGate(queue: queue, maxWaiting: maxWaiting, refresh: refresh, maxAge: maxAge), redis)
        } catch {
            redis.shutdown()
            await server.shutdown()
            throw error
        }
        redis.shutdown()
        await server.shutdown()
    }

    @Test("a Redis slower than the count's age limit still gives a count: an empty queue admits, it is not called full")
    func slowRead() async throws {
        try await withGateOnOwnServer(maxWaiting: 10, refresh: .milliseconds(100), maxAge: .milliseconds(300)) { gate, redis in
            // Written first on the same connection, the stall holds the gate's read (it has no count yet) for a
            // second, three times the age limit.
            let stall = try await redis.sendWithoutWaiting(RedisCommand("DEBUG", "SLEEP", "1"))
            try await gate.admit()
            _ = try? await stall.get()
        }
    }

    @Test("requests that find no count wait for one read together: a burst after a quiet spell reads Redis once")
    func oneReadForABurst() async throws {
        try await withGateOnOwnServer(maxWaiting: 100, refresh: .seconds(30), maxAge: .seconds(60)) { gate, redis in
            _ = try await redis.send(RedisCommand("CONFIG", "RESETSTAT"))
            // The stall holds the first read long enough for all twenty requests to find no count.
            let stall = try await redis.sendWithoutWaiting(RedisCommand("DEBUG", "SLEEP", "0.5"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 { group.addTask { try await gate.admit() } }
                try await group.waitForAll()
            }
            _ = try? await stall.get()
            let stats = try #require(try await redis.send(RedisCommand("INFO", "commandstats")).string)
            let xlen = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_xlen:") }
            #expect(xlen?.hasPrefix("cmdstat_xlen:calls=1,") == true, "\(xlen ?? "no XLEN at all")")
        }
    }

    @Test("a full queue is refused until its count is read again and shows room")
    func refusesWhenFull() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let stream = uniqueKey("jobs")
        let queue = JobQueue<InferenceJob>(redis: redis, configuration: JobQueueConfiguration(stream: stream, deadLetterStream: stream + ":dead"))
        try await queue.prepare()
        let gate = BacklogGate(queue: queue, maxWaiting: 2, refresh: .milliseconds(50), maxAge: .seconds(5))
        try await gate.admit()
        try await gate.admit()
        // Two admitted and counted at once, though neither reached the queue: the third is refused.
        await #expect { try await gate.admit() } throws: { ($0 as? ChatError)?.code == "QUEUE_FULL" }
        // The count read again (nothing is queued): room again.
        try await expectEventually(.seconds(5)) { (try? await gate.admit()) != nil }
    }
}

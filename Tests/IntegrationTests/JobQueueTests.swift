import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import Queue

/// A payload for queue tests.
struct TestJob: Codable, Sendable, Equatable {
    var text: String
}

/// A queue on streams of its own, with a short visibility timeout.
func testQueue(_ redis: RedisClient, visibility: Duration = .milliseconds(500), maxAttempts: Int = 3) -> JobQueue<TestJob> {
    let prefix = uniqueKey("jobs")
    return JobQueue(
        redis: redis,
        configuration: JobQueueConfiguration(
            stream: prefix, group: "workers", deadLetterStream: prefix + ":dead", visibilityTimeout: visibility, maxAttempts: maxAttempts
        )
    )
}

@Suite("Job queue semantics against redis-server")
struct JobQueueTests {
    @Test("ack removes a job from the pending list and from the stream")
    func ackRemovesFromPending() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis)
        try await queue.prepare()
        try await queue.enqueue(id: "job-1", payload: TestJob(text: "hello"))
        let jobs = try await queue.receive(consumer: "w1", count: 10, block: .seconds(1))
        #expect(jobs.map(\.id) == ["job-1"])
        #expect(jobs.first?.payload == TestJob(text: "hello"))
        #expect(jobs.first?.attempt == 1)
        #expect(try await queue.pendingCount() == 1)
        try await queue.acknowledge(jobs[0])
        #expect(try await queue.pendingCount() == 0)
        #expect(try await redis.xlen(queue.configuration.stream) == 0)
    }

    @Test("a job whose consumer never acks is reclaimed by another after the visibility timeout, not before")
    func reclaimAfterVisibilityTimeout() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis, visibility: .seconds(2))
        try await queue.prepare()
        try await queue.enqueue(id: "job-2", payload: TestJob(text: "x"))
        let first = try await queue.receive(consumer: "dead-worker", count: 1, block: .seconds(1))
        #expect(first.count == 1)
        let early = try await queue.reclaim(consumer: "w2", count: 10)
        #expect(early.jobs.isEmpty)
        try await Task.sleep(for: .milliseconds(2_200))
        let late = try await queue.reclaim(consumer: "w2", count: 10)
        #expect(late.jobs.map(\.id) == ["job-2"])
        #expect(late.jobs.first?.attempt == 2)
        let pending = try await redis.xpending(queue.configuration.stream, group: "workers")
        #expect(pending.map(\.consumer) == ["w2"])
    }

    @Test("a heartbeated job is not reclaimed; a lost one is reported to its old holder")
    func heartbeatKeepsJob() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        // Margins wide enough for a loaded CI machine: a heartbeat every 300 ms against a 2 s visibility timeout.
        let queue = testQueue(redis, visibility: .seconds(2))
        try await queue.prepare()
        try await queue.enqueue(id: "job-3", payload: TestJob(text: "slow"))
        let jobs = try await queue.receive(consumer: "w1", count: 1, block: .seconds(1))
        let entry = try #require(jobs.first).entryID
        let clock = ContinuousClock()
        let start = clock.now
        // Keep heartbeating for longer than the visibility timeout: nobody may take the job meanwhile.
        while clock.now - start < .seconds(3) {
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await queue.heartbeat(consumer: "w1", entryIDs: [entry]).isEmpty)
            #expect(try await queue.reclaim(consumer: "w2", count: 10).jobs.isEmpty)
        }
        // Stop heartbeating: another worker takes it, and the old holder's next heartbeat says it is lost.
        try await Task.sleep(for: .milliseconds(2_200))
        #expect(try await queue.reclaim(consumer: "w2", count: 10).jobs.map(\.id) == ["job-3"])
        #expect(try await queue.heartbeat(consumer: "w1", entryIDs: [entry]) == [entry])
        // The heartbeat of the old holder did not steal it back.
        #expect(try await redis.xpending(queue.configuration.stream, group: "workers").map(\.consumer) == ["w2"])
    }

    @Test("after its last attempt a job is in the dead-letter stream, not pending")
    func deadLetterAfterLastAttempt() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis, visibility: .milliseconds(200), maxAttempts: 2)
        try await queue.prepare()
        try await queue.enqueue(id: "job-4", payload: TestJob(text: "doomed"))
        #expect(try await queue.receive(consumer: "w1", count: 1, block: .seconds(1)).count == 1)  // attempt 1
        try await Task.sleep(for: .milliseconds(250))
        let second = try await queue.reclaim(consumer: "w2", count: 10)  // attempt 2, the last
        #expect(second.jobs.map(\.attempt) == [2])
        try await Task.sleep(for: .milliseconds(250))
        let third = try await queue.reclaim(consumer: "w3", count: 10)
        #expect(third.jobs.isEmpty)
        #expect(third.deadLettered.map(\.id) == ["job-4"])
        #expect(try await queue.pendingCount() == 0)
        let dead = try await queue.deadLetters()
        #expect(dead.count == 1)
        #expect(dead.first?.fields["jobId"] == "job-4")
        #expect(dead.first?.fields["attempts"] == "3")
        #expect(dead.first?.fields["payload"].map { try? JSONDecoder().decode(TestJob.self, from: Data($0.utf8)) } == TestJob(text: "doomed"))
    }

    @Test("an entry whose payload cannot be decoded is dead-lettered, never handed out")
    func undecodablePayload() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis)
        try await queue.prepare()
        try await redis.xadd(queue.configuration.stream, fields: [("jobId", "bad"), ("payload", "{not json")])
        try await queue.enqueue(id: "good", payload: TestJob(text: "ok"))
        let jobs = try await queue.receive(consumer: "w1", count: 10, block: .seconds(1))
        #expect(jobs.map(\.id) == ["good"])
        #expect(try await queue.deadLetters().map { $0.fields["jobId"] } == ["bad"])
    }
}

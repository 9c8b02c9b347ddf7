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
            #expect(try await queue.heartbeat(consumer: "w1", jobs: [(entry, 1)]).isEmpty)
            #expect(try await queue.reclaim(consumer: "w2", count: 10).jobs.isEmpty)
        }
        // Stop heartbeating: another worker takes it, and the old holder's next heartbeat says it is lost.
        try await Task.sleep(for: .milliseconds(2_200))
        #expect(try await queue.reclaim(consumer: "w2", count: 10).jobs.map(\.id) == ["job-3"])
        #expect(try await queue.heartbeat(consumer: "w1", jobs: [(entry, 1)]) == [entry])
        // The heartbeat of the old holder did not steal it back.
        #expect(try await redis.xpending(queue.configuration.stream, group: "workers").map(\.consumer) == ["w2"])
    }

    @Test("after its last attempt a reclaimed job comes back past the limit, and its dead letter leaves nothing pending")
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
        let late = try #require(third.jobs.first)
        #expect(third.jobs.count == 1 && late.attempt == 3 && late.consumer == "w3")
        // The former holder cannot dead-letter it; its current one can.
        #expect(try await queue.deadLetter(second.jobs[0], reason: "stale") == false)
        #expect(try await queue.deadLetter(late, reason: "the job was not finished after 2 attempts"))
        #expect(try await queue.pendingCount() == 0)
        let dead = try await queue.deadLetters()
        #expect(dead.count == 1)
        #expect(dead.first?.fields["jobId"] == "job-4")
        #expect(dead.first?.fields["attempts"] == "3")
        #expect(dead.first?.fields["payload"].map { try? JSONDecoder().decode(TestJob.self, from: Data($0.utf8)) } == TestJob(text: "doomed"))
    }

    @Test("a former holder's ack, heartbeat and dead letter change nothing once another worker took the job over")
    func formerHolderIsFenced() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis, visibility: .seconds(30))
        try await queue.prepare()
        try await queue.enqueue(id: "job-f", payload: TestJob(text: "x"))
        let stale = try #require(try await queue.receive(consumer: "w1", count: 1, block: .seconds(1)).first)
        #expect(stale.attempt == 1 && stale.consumer == "w1")
        // w2 takes the entry over (as its reclaim does after the visibility timeout; here without waiting).
        try await redis.xclaim(queue.configuration.stream, group: "workers", consumer: "w2", minIdle: .zero, ids: [stale.entryID])
        let current = QueuedJob(id: stale.id, entryID: stale.entryID, payload: stale.payload, attempt: 2, consumer: "w2")

        #expect(try await queue.acknowledge(stale) == .notOwner)
        #expect(try await queue.heartbeat(consumer: "w1", jobs: [(stale.entryID, 1)]) == [stale.entryID])
        #expect(try await queue.deadLetter(stale, reason: "stale") == false)
        // A heartbeat by the right consumer at the wrong attempt is refused as well.
        #expect(try await queue.heartbeat(consumer: "w2", jobs: [(stale.entryID, 1)]) == [stale.entryID])
        #expect(try await redis.xlen(queue.configuration.stream) == 1)
        #expect(try await queue.deadLetters().isEmpty)
        let pending = try await redis.xpending(queue.configuration.stream, group: "workers")
        #expect(pending.map(\.consumer) == ["w2"] && pending.map(\.deliveries) == [2])

        #expect(try await queue.heartbeat(consumer: "w2", jobs: [(stale.entryID, 2)]).isEmpty)
        #expect(try await queue.acknowledge(current) == .acked)
        #expect(try await queue.acknowledge(current) == .alreadyDone)
        #expect(try await redis.xlen(queue.configuration.stream) == 0)
    }

    @Test("a job its own worker still runs is only refreshed by that worker's reclaim, never taken again at a new attempt")
    func ownRunningJobIsNotReclaimed() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis, visibility: .seconds(2))
        try await queue.prepare()
        try await queue.enqueue(id: "job-s", payload: TestJob(text: "x"))
        let job = try #require(try await queue.receive(consumer: "w1", count: 1, block: .seconds(1)).first)
        // Idle past the visibility timeout (its heartbeats were late), but still running here.
        try await expectEventually { (try await redis.xpending(queue.configuration.stream, group: "workers").first?.idleMilliseconds ?? 0) >= 2_000 }
        #expect(try await queue.reclaim(consumer: "w1", count: 10, running: [job.entryID]).jobs.isEmpty)
        let refreshed = try await redis.xpending(queue.configuration.stream, group: "workers")
        #expect(refreshed.map(\.deliveries) == [1] && refreshed.map(\.consumer) == ["w1"])
        #expect(refreshed.first.map { $0.idleMilliseconds < 2_000 } == true)
        #expect(try await queue.reclaim(consumer: "w2", count: 10).jobs.isEmpty)
        #expect(try await queue.acknowledge(job) == .acked)
    }

    @Test("a pending entry deleted from the stream is dropped by the reclaim")
    func deletedEntryIsDropped() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis, visibility: .milliseconds(200))
        try await queue.prepare()
        try await queue.enqueue(id: "job-d", payload: TestJob(text: "x"))
        let job = try #require(try await queue.receive(consumer: "w1", count: 1, block: .seconds(1)).first)
        try await redis.xdel(queue.configuration.stream, ids: [job.entryID])
        try await expectEventually { (try await redis.xpending(queue.configuration.stream, group: "workers").first?.idleMilliseconds ?? 0) >= 200 }
        #expect(try await queue.reclaim(consumer: "w2", count: 10).jobs.isEmpty)
        #expect(try await queue.pendingCount() == 0)
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

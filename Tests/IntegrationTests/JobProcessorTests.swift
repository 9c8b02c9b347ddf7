import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Testing

@testable import Queue

/// A handler whose behaviour each test sets: how long a job takes, whether it fails.
final class RecordingHandler: JobHandler, Sendable {
    typealias Payload = TestJob
    struct State {
        var runs: [(id: String, attempt: Int, consumer: String)] = []
        var finished: [String] = []
        var abandoned: [String] = []
        var running = 0
        var maxRunning = 0
    }
    let state = NIOLockedValueBox(State())
    let name: String
    let duration: @Sendable (QueuedJob<TestJob>) -> Duration
    let failure: @Sendable (QueuedJob<TestJob>) -> (any Error)?

    init(
        name: String, duration: @escaping @Sendable (QueuedJob<TestJob>) -> Duration = { _ in .milliseconds(10) },
        failure: @escaping @Sendable (QueuedJob<TestJob>) -> (any Error)? = { _ in nil }
    ) {
        self.name = name
        self.duration = duration
        self.failure = failure
    }

    func run(_ job: QueuedJob<TestJob>) async throws {
        state.withLockedValue {
            $0.runs.append((job.id, job.attempt, name))
            $0.running += 1
            $0.maxRunning = max($0.maxRunning, $0.running)
        }
        defer { state.withLockedValue { $0.running -= 1 } }
        try await Task.sleep(for: duration(job))
        if let error = failure(job) { throw error }
        state.withLockedValue { $0.finished.append(job.id) }
    }

    func abandon(_ job: QueuedJob<TestJob>, reason: String) async {
        state.withLockedValue { $0.abandoned.append(job.id) }
    }
}

/// Runs processors in a service group until `body` returns, then shuts them down gracefully.
func withProcessors(
    _ processors: [any Service], _ body: @Sendable () async throws -> Void
) async throws {
    let group = ServiceGroup(configuration: .init(services: processors.map { .init(service: $0) }, logger: Logger(label: "test")))
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            try await body()
        } catch {
            await group.triggerGracefulShutdown()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
}

/// Records an issue unless `condition` comes to hold within `limit`.
func expectEventually(
    _ limit: Duration = .seconds(10), sourceLocation: SourceLocation = #_sourceLocation, _ condition: @Sendable () async throws -> Bool
) async throws {
    let held = try await eventually(limit, condition)
    #expect(held, "the condition did not hold within \(limit)", sourceLocation: sourceLocation)
}

/// Runs `body`, failing with a recorded issue and a thrown error if it takes longer than `limit`: no test hangs.
func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            Issue.record("timed out after \(limit)")
            throw CancellationError()
        }
        return value
    }
}

/// Waits until `condition` holds, checking every 20 ms, for at most `limit`.
func eventually(_ limit: Duration = .seconds(10), _ condition: @Sendable () async throws -> Bool) async throws -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while clock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

@Suite("Job processor against redis-server")
struct JobProcessorTests {
    func processor(_ queue: JobQueue<TestJob>, _ handler: RecordingHandler, concurrency: Int, drain: Duration = .seconds(5)) -> JobProcessor<RecordingHandler> {
        JobProcessor(
            queue: queue, handler: handler,
            configuration: JobProcessorConfiguration(
                consumer: handler.name, concurrency: concurrency, visibilityTimeout: queue.configuration.visibilityTimeout, drainTimeout: drain
            ),
            logger: Logger(label: "test.\(handler.name)")
        )
    }

    @Test("every job runs once and is acknowledged, never more than the concurrency limit at a time")
    func concurrencyLimit() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis, visibility: .seconds(5))
        try await queue.prepare()
        for index in 0..<30 { try await queue.enqueue(id: "job-\(index)", payload: TestJob(text: "\(index)")) }
        let handler = RecordingHandler(name: "w1", duration: { _ in .milliseconds(60) })
        try await withProcessors([processor(queue, handler, concurrency: 4)]) {
            try await expectEventually { handler.state.withLockedValue { $0.finished.count } == 30 }
            try await expectEventually { try await queue.pendingCount() == 0 }
        }
        let state = handler.state.withLockedValue { $0 }
        #expect(Set(state.finished) == Set((0..<30).map { "job-\($0)" }))
        #expect(state.runs.count == 30)
        #expect(state.maxRunning <= 4)
        #expect(state.maxRunning >= 2)
    }

    @Test("with every slot taken the read loop waits, across several reclaim rounds, for a slot to free: it never spins", .timeLimit(.minutes(1)))
    func fullSlotsDoNotSpin() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis, visibility: .milliseconds(800))
        try await queue.prepare()
        for index in 0..<3 { try await queue.enqueue(id: "slow-\(index)", payload: TestJob(text: "\(index)")) }
        let handler = RecordingHandler(name: "full", duration: { _ in .milliseconds(1_500) })
        let worker = processor(queue, handler, concurrency: 1)
        try await withProcessors([worker]) {
            try await expectEventually(.seconds(20)) { handler.state.withLockedValue { $0.finished.count } == 3 }
        }
        // About 4.5 s with its one slot taken, the reclaim round (half the visibility timeout, at least every
        // second) waking it now and then: a few dozen waits at most; a spinning loop makes hundreds of thousands.
        #expect(worker.slotFreed.waits < 100, "the read loop waited \(worker.slotFreed.waits) times")
    }

    @Test("a worker that drained leaves the consumer group; one that left a job pending stays in it until that job is taken", .timeLimit(.minutes(1)))
    func drainedWorkerLeavesTheGroup() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis, visibility: .seconds(5))
        try await queue.prepare()
        try await queue.enqueue(id: "one", payload: TestJob(text: "1"))
        let handler = RecordingHandler(name: "leaver", duration: { _ in .milliseconds(50) })
        try await withProcessors([processor(queue, handler, concurrency: 2)]) {
            try await expectEventually { handler.state.withLockedValue { $0.finished.count } == 1 }
            try await expectEventually { try await queue.pendingCount() == 0 }
        }
        func consumers() async throws -> [String] {
            (try await redis.send("XINFO", "CONSUMERS", queue.configuration.stream, queue.configuration.group).array ?? []).compactMap { row in
                let fields = row.array ?? []
                return stride(from: 0, to: fields.count - 1, by: 2).first { fields[$0].string == "name" }.flatMap { fields[$0 + 1].string }
            }
        }
        #expect(try await !consumers().contains("leaver"))
        // A consumer still holding a delivered job is not taken out.
        try await queue.enqueue(id: "two", payload: TestJob(text: "2"))
        _ = try await queue.receive(consumer: "holder", count: 1, block: .milliseconds(100))
        #expect(try await queue.leave(consumer: "holder") == false)
        #expect(try await consumers().contains("holder"))
    }

    @Test("a signal wakes the waiter, or the next wait; a cancelled wait returns and leaves the signal usable")
    func wakeSignal() async throws {
        let signal = WakeSignal()
        signal.signal()
        await signal.wait()  // the earlier signal: returns at once
        let cancelled = Task { await signal.wait() }
        try await expectEventually { signal.isWaited }
        cancelled.cancel()
        await cancelled.value
        #expect(!signal.isWaited)
        // After a cancelled wait, a wait waits again, until a signal.
        let waiting = Task { await signal.wait() }
        try await expectEventually { signal.isWaited }
        signal.signal()
        try await withTimeout(.seconds(5)) { await waiting.value }
    }

    @Test("a job held by a consumer that died is run by another processor after the visibility timeout")
    func reclaimsFromDeadConsumer() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis, visibility: .milliseconds(600))
        try await queue.prepare()
        try await queue.enqueue(id: "orphan", payload: TestJob(text: "x"))
        #expect(try await queue.receive(consumer: "crashed", count: 1, block: .seconds(1)).count == 1)
        let handler = RecordingHandler(name: "w2")
        try await withProcessors([processor(queue, handler, concurrency: 2)]) {
            try await expectEventually { handler.state.withLockedValue { $0.finished } == ["orphan"] }
        }
        #expect(handler.state.withLockedValue { $0.runs.map(\.attempt) } == [2])
        #expect(try await queue.pendingCount() == 0)
    }

    @Test("a job running longer than the visibility timeout is heartbeated and never taken by a second processor")
    func heartbeatsLongJob() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        // Generous margins: the heartbeat (every third of the visibility timeout) must not miss a whole
        // timeout even while the rest of the suite loads both cores.
        let queue = testQueue(redis, visibility: .seconds(3))
        try await queue.prepare()
        let first = RecordingHandler(name: "slow", duration: { _ in .milliseconds(7_000) })
        let second = RecordingHandler(name: "idle")
        try await queue.enqueue(id: "long", payload: TestJob(text: "x"))
        try await withProcessors([processor(queue, first, concurrency: 1)]) {
            try await expectEventually { first.state.withLockedValue { $0.runs.count } == 1 }
            try await withProcessors([processor(queue, second, concurrency: 1)]) {
                try await expectEventually(.seconds(20)) { first.state.withLockedValue { $0.finished } == ["long"] }
            }
        }
        #expect(second.state.withLockedValue { $0.runs.isEmpty })
        #expect(first.state.withLockedValue { $0.runs.count } == 1)
    }

    @Test("a permanent failure dead-letters the job at once and tells the handler")
    func permanentFailure() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis)
        try await queue.prepare()
        let handler = RecordingHandler(name: "w", failure: { _ in JobFailure.permanent("bad model") })
        try await queue.enqueue(id: "broken", payload: TestJob(text: "x"))
        try await withProcessors([processor(queue, handler, concurrency: 1)]) {
            try await expectEventually { handler.state.withLockedValue { $0.abandoned } == ["broken"] }
        }
        let dead = try await queue.deadLetters()
        #expect(dead.map { $0.fields["reason"] } == ["bad model"])
        #expect(try await queue.pendingCount() == 0)
    }

    @Test("a failing job is retried after the visibility timeout, then dead-lettered after its last attempt")
    func retriesThenDeadLetters() async throws {
        struct Flaky: Error {}
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis, visibility: .milliseconds(300), maxAttempts: 3)
        try await queue.prepare()
        let handler = RecordingHandler(name: "w", failure: { _ in Flaky() })
        try await queue.enqueue(id: "flaky", payload: TestJob(text: "x"))
        try await withProcessors([processor(queue, handler, concurrency: 1)]) {
            try await expectEventually { handler.state.withLockedValue { $0.abandoned } == ["flaky"] }
        }
        #expect(handler.state.withLockedValue { $0.runs.map(\.attempt) } == [1, 2, 3])
        #expect(try await queue.deadLetters().count == 1)
    }

    @Test("a processor makes its consumer group again when Redis lost it, and the jobs enqueued after that run")
    func recreatesLostGroup() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis, visibility: .seconds(5))
        try await queue.prepare()
        let handler = RecordingHandler(name: "w")
        try await withProcessors([processor(queue, handler, concurrency: 2)]) {
            try await queue.enqueue(id: "before", payload: TestJob(text: "x"))
            try await expectEventually { handler.state.withLockedValue { $0.finished } == ["before"] }
            // Redis loses the stream and its group; the next XADD makes the stream again, without a group.
            _ = try await redis.send("DEL", queue.configuration.stream)
            try await queue.enqueue(id: "after", payload: TestJob(text: "y"))
            try await expectEventually { handler.state.withLockedValue { $0.finished } == ["before", "after"] }
        }
        #expect(try await queue.pendingCount() == 0)
    }

    @Test("graceful shutdown lets a running job finish and acknowledges it")
    func drainsOnShutdown() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis, visibility: .seconds(5))
        try await queue.prepare()
        let handler = RecordingHandler(name: "w", duration: { _ in .milliseconds(700) })
        try await queue.enqueue(id: "in-flight", payload: TestJob(text: "x"))
        try await withProcessors([processor(queue, handler, concurrency: 1)]) {
            try await expectEventually { handler.state.withLockedValue { $0.runs.count } == 1 }
        }
        // withProcessors returned only after shutdown completed: the job finished and was acknowledged.
        #expect(handler.state.withLockedValue { $0.finished } == ["in-flight"])
        #expect(try await queue.pendingCount() == 0)
    }

    @Test("a job still running when the drain timeout passes is left pending for another worker")
    func drainTimeoutLeavesJobPending() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let queue = testQueue(redis, visibility: .seconds(5))
        try await queue.prepare()
        let handler = RecordingHandler(name: "w", duration: { _ in .seconds(30) })
        try await queue.enqueue(id: "too-long", payload: TestJob(text: "x"))
        try await withProcessors([processor(queue, handler, concurrency: 1, drain: .milliseconds(200))]) {
            try await expectEventually { handler.state.withLockedValue { $0.runs.count } == 1 }
        }
        #expect(handler.state.withLockedValue { $0.finished.isEmpty })
        #expect(try await queue.pendingCount() == 1)
    }
}

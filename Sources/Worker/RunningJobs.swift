import ChatState
import Logging
import NIOConcurrencyHelpers
import Queue
import ServiceLifecycle

/// Tells a running job that it must stop: its user asked to, or its attempt lost the job.
final class JobCancellation: Sendable {
    /// Why a job is stopped.
    enum Reason: Sendable {
        /// The user asked to stop it.
        case requested
        /// Another attempt runs the job, or it ended: this run must stop without a trace.
        case lost
    }

    private let stream: AsyncStream<Reason>
    private let continuation: AsyncStream<Reason>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Reason.self, bufferingPolicy: .bufferingOldest(1))
    }

    /// Asks the job to stop (the first reason given wins; later calls do nothing).
    func cancel(_ reason: Reason = .requested) {
        continuation.yield(reason)
        continuation.finish()
    }

    /// Returns the reason once the job is asked to stop; nil when the calling task is cancelled first.
    func wait() async -> Reason? {
        for await reason in stream { return reason }
        return nil
    }
}

/// The generation jobs this worker runs now, with what they need from outside without a task or a poll of
/// their own: one blocking read of the `chat:cancels` stream for the whole process wakes the job a user
/// asked to stop, and one loop renews every running job's session lock in one round trip, stopping the runs
/// whose attempt lost its job.
final class RunningJobs: Service, Sendable {
    private struct Entry {
        var sessionID: String
        var attempt: Int
        var cancellation: JobCancellation
    }

    private let redis: RedisClient
    private let state: GenerationState
    private let renewInterval: Duration
    private let logger: Logger
    private let jobs = NIOLockedValueBox([String: Entry]())

    /// Running jobs over `redis`; session locks renewed every `renewInterval`.
    init(redis: RedisClient, state: GenerationState, renewInterval: Duration = .seconds(10), logger: Logger) {
        self.redis = redis
        self.state = state
        self.renewInterval = renewInterval
        self.logger = logger
    }

    /// Registers a job before it starts (so no request to stop it can slip by) and returns its cancellation.
    func register(jobID: String, sessionID: String, attempt: Int) -> JobCancellation {
        let cancellation = JobCancellation()
        jobs.withLockedValue { $0[jobID] = Entry(sessionID: sessionID, attempt: attempt, cancellation: cancellation) }
        return cancellation
    }

    /// Forgets a job that ended.
    func unregister(jobID: String) {
        jobs.withLockedValue { _ = $0.removeValue(forKey: jobID) }
    }

    /// Reads cancellation requests and renews locks until the worker stops.
    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await cancelWhenGracefulShutdown { await self.readCancellations() } }
            group.addTask {
                await cancelWhenGracefulShutdown {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: self.renewInterval)
                        await self.renewLocks()
                    }
                }
            }
        }
    }

    private func readCancellations() async {
        var cursor: String?
        var failures = 0
        while !Task.isCancelled {
            do {
                if cursor == nil {
                    let last = try await redis.send("XREVRANGE", GenerationState.cancelsKey, "+", "-", "COUNT", "1")
                    cursor = last.array?.first?.array?.first?.string ?? "0-0"
                }
                let entries = try await redis.xread(GenerationState.cancelsKey, after: cursor!, count: 512, block: .seconds(5))
                failures = 0
                guard let last = entries.last else { continue }
                cursor = last.id
                let asked = entries.compactMap { $0.fields["jobId"] }
                let found = jobs.withLockedValue { jobs in asked.compactMap { jobs[$0]?.cancellation } }
                found.forEach { $0.cancel() }
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.warning("reading cancellation requests failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(min(2_000, 100 * failures)))
            }
        }
    }

    func renewLocks() async {
        let running = jobs.withLockedValue { jobs in jobs.map { (jobID: $0.key, sessionID: $0.value.sessionID, attempt: $0.value.attempt) } }
        do {
            let lost = try await state.renewLocks(running)
            let stopped = jobs.withLockedValue { jobs in lost.compactMap { jobs[$0]?.cancellation } }
            if !stopped.isEmpty { logger.warning("runs whose attempt lost its job are stopped", metadata: ["jobs": "\(lost.sorted())"]) }
            stopped.forEach { $0.cancel(.lost) }
        } catch {
            logger.warning("renewing session locks failed", metadata: ["error": "\(error)"])
        }
    }
}

import ChatCore
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// How a worker consumes its queue.
public struct JobProcessorConfiguration: Sendable {
    /// This worker's consumer name in the group; unique per process.
    public var consumer: String
    /// Jobs run at once by this process.
    public var concurrency: Int
    /// How long one blocking read for new jobs waits.
    public var readBlock: Duration
    /// How often in-flight jobs are heartbeated; well under the visibility timeout.
    public var heartbeatInterval: Duration
    /// How often jobs idle past the visibility timeout are looked for.
    public var reclaimInterval: Duration
    /// On shutdown, how long in-flight jobs may take to finish before they are left for other workers.
    public var drainTimeout: Duration

    /// Settings whose intervals follow from the queue's visibility timeout: every running job heartbeated (in
    /// one round trip) every second, or four times per timeout if that is shorter; idle jobs looked for every
    /// second, or twice per timeout. A worker that dies is noticed one timeout and at most one reclaim interval
    /// after its last heartbeat.
    public init(consumer: String, concurrency: Int = 64, visibilityTimeout: Duration = .seconds(5), drainTimeout: Duration = .seconds(25)) {
        self.consumer = consumer
        self.concurrency = max(1, concurrency)
        self.readBlock = .seconds(2)
        self.heartbeatInterval = min(.seconds(1), visibilityTimeout / 4)
        self.reclaimInterval = min(.seconds(1), visibilityTimeout / 2)
        self.drainTimeout = drainTimeout
    }
}

/// Consumes a `JobQueue` under a concurrency limit: reads new jobs, heartbeats the running ones, reclaims
/// jobs of workers gone quiet, dead-letters jobs past their last attempt, and drains on graceful shutdown.
/// One task per running job, none per idle slot; no thread is held.
public final class JobProcessor<Handler: JobHandler>: Service, Sendable {
    public typealias Payload = Handler.Payload
    private let queue: JobQueue<Payload>
    private let handler: Handler
    private let configuration: JobProcessorConfiguration
    private let logger: Logger
    private let running = NIOLockedValueBox(Slots())
    private let reclaimCursor = NIOLockedValueBox("0-0")
    /// Signalled whenever a running job ends and frees its slot.
    let slotFreed = WakeSignal()

    /// A processor of `queue` with `handler`.
    public init(queue: JobQueue<Payload>, handler: Handler, configuration: JobProcessorConfiguration, logger: Logger) {
        self.queue = queue
        self.handler = handler
        self.configuration = configuration
        self.logger = logger
    }

    /// The running jobs, by stream entry id, with the attempt each runs.
    private struct Slots {
        var tasks: [String: (task: Task<Void, Never>, attempt: Int)] = [:]
    }

    /// The number of jobs running now.
    public var inFlight: Int { running.withLockedValue { $0.tasks.count } }

    /// Runs until graceful shutdown, then stops reading and waits up to the drain timeout for running jobs.
    public func run() async throws {
        try await queue.prepare()
        logger.info("job processor started", metadata: ["consumer": "\(configuration.consumer)", "concurrency": "\(configuration.concurrency)"])
        await withDiscardingTaskGroup { group in
            group.addTask { await self.every(self.configuration.heartbeatInterval) { await self.heartbeat() } }
            await self.readLoop()
            await self.drain()
            group.cancelAll()
        }
        // A worker that finished everything it took leaves the group; one that left jobs behind stays listed, so
        // that they are reclaimed from it.
        if (try? await queue.leave(consumer: configuration.consumer)) == true {
            logger.info("left the consumer group", metadata: ["consumer": "\(configuration.consumer)"])
        }
        logger.info("job processor stopped", metadata: ["consumer": "\(configuration.consumer)"])
    }

    /// Reads new jobs and reclaims idle ones in one loop, so both take from the one concurrency limit, until
    /// graceful shutdown (a draining worker takes no jobs: neither new ones nor other workers' idle ones). It
    /// checks between reads rather than cancelling one: a read cut short would leave the jobs Redis just handed
    /// over pending until the visibility timeout.
    private func readLoop() async {
        var failures = 0
        let clock = ContinuousClock()
        var nextReclaim = clock.now + configuration.reclaimInterval
        let block = min(configuration.readBlock, configuration.reclaimInterval)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if clock.now >= nextReclaim {
                await reclaim()
                nextReclaim = clock.now + configuration.reclaimInterval
            }
            let free = configuration.concurrency - inFlight
            if free <= 0 {
                let until = nextReclaim
                await cancelWhenGracefulShutdown {
                    await withTaskGroup(of: Void.self) { group in
                        group.addTask { await self.slotFreed.wait() }
                        group.addTask { try? await Task.sleep(until: until) }
                        await group.next()
                        group.cancelAll()
                    }
                }
                continue
            }
            do {
                let jobs = try await queue.receive(consumer: configuration.consumer, count: free, block: block)
                failures = 0
                jobs.forEach(start)
            } catch is CancellationError {
                return
            } catch let error as RedisServerError where error.prefix == "NOGROUP" {
                // Redis lost the stream or the group (a restart without persistence, a failover to an empty
                // replica, a flush): make them again and go on, or every job would wait for ever.
                logger.error("the job queue's consumer group is gone; creating it again", metadata: ["error": "\(error)"])
                do {
                    try await queue.prepare()
                } catch {
                    try? await Task.sleep(for: .milliseconds(500))
                }
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.warning("reading jobs failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(min(2_000, 100 * failures)))
            }
        }
    }

    /// Starts a job as its own task, registered so that a lost heartbeat or the drain can cancel it. A job
    /// this worker already runs (reclaimed from itself after missed heartbeats) is not started twice.
    private func start(_ job: QueuedJob<Payload>) {
        start(job) { await self.process(job) }
    }

    /// Runs `work` for the job as its own task in one of the concurrency slots (a dead letter too: it calls the
    /// accounting service and the database, and must not hold up the read loop).
    private func start(_ job: QueuedJob<Payload>, _ work: @escaping @Sendable () async -> Void) {
        running.withLockedValue { slots in
            guard slots.tasks[job.entryID] == nil else { return }
            let task = Task { [self] in
                await work()
                self.running.withLockedValue { _ = $0.tasks.removeValue(forKey: job.entryID) }
                self.slotFreed.signal()
            }
            slots.tasks[job.entryID] = (task, job.attempt)
        }
    }

    private func process(_ job: QueuedJob<Payload>) async {
        do {
            try await handler.run(job)
        } catch {
            await failed(job, error)
            return
        }
        // The job's effects are done: a failed acknowledgement must not count as a failed job. If all tries
        // fail, the job is delivered again later and the handler sees it has already ended.
        for attempt in 1...3 {
            do {
                if try await queue.acknowledge(job) == .notOwner {
                    logger.warning("a finished job's entry is held by a later attempt; not acknowledged", metadata: ["jobId": "\(job.id)", "attempt": "\(job.attempt)"])
                }
                return
            } catch {
                logger.warning("acknowledging a finished job failed", metadata: ["jobId": "\(job.id)", "try": "\(attempt)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(200 * attempt))
            }
        }
    }

    /// A run that threw: left for a retry (cancelled, or attempts remain), or dead-lettered and abandoned.
    private func failed(_ job: QueuedJob<Payload>, _ error: any Error) async {
        if Task.isCancelled || error is CancellationError {
            logger.info("job stopped before it finished; left for another worker", metadata: ["jobId": "\(job.id)"])
            return
        }
        if let fenced = error as? JobFenced {
            logger.warning("job taken over by a later attempt; this one stopped", metadata: ["jobId": "\(job.id)", "attempt": "\(fenced.attempt)"])
            return
        }
        let permanent = error as? JobFailure
        if permanent == nil, job.attempt < queue.configuration.maxAttempts {
            logger.warning("job failed; it will be retried", metadata: ["jobId": "\(job.id)", "attempt": "\(job.attempt)", "error": "\(error)"])
            return
        }
        await deadLetter(job, reason: permanent?.reason ?? "the last attempt failed: \(error)")
    }

    /// Dead-letters the job and, if that was this attempt's to do, abandons it.
    private func deadLetter(_ job: QueuedJob<Payload>, reason: String) async {
        do {
            guard try await queue.deadLetter(job, reason: reason) else {
                logger.warning("not dead-lettered: the job's entry is no longer this attempt's", metadata: ["jobId": "\(job.id)", "attempt": "\(job.attempt)"])
                return
            }
            ChatMetrics.jobDeadLettered()
            logger.warning("job dead-lettered", metadata: ["jobId": "\(job.id)", "attempt": "\(job.attempt)", "reason": "\(reason)"])
            await handler.abandon(job, reason: reason)
        } catch {
            logger.error("dead-lettering failed; the job stays pending", metadata: ["jobId": "\(job.id)", "error": "\(error)"])
        }
    }

    private func heartbeat() async {
        let jobs = running.withLockedValue { $0.tasks.map { (entryID: $0.key, attempt: $0.value.attempt) } }
        guard !jobs.isEmpty else { return }
        do {
            let lost = try await queue.heartbeat(consumer: configuration.consumer, jobs: jobs)
            for entryID in lost {
                // A job that finished (and was acknowledged) since the snapshot is not lost: it is done.
                guard let task = running.withLockedValue({ $0.tasks[entryID] })?.task else { continue }
                logger.warning("a running job was taken over by another worker; stopping it", metadata: ["entry": "\(entryID)"])
                task.cancel()
            }
        } catch {
            logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
        }
    }

    /// Takes over idle jobs while this worker has free slots.
    func reclaim() async {
        let free = configuration.concurrency - inFlight
        guard free > 0 else { return }
        do {
            let cursor = reclaimCursor.withLockedValue { $0 }
            let mine = running.withLockedValue { Set($0.tasks.keys) }
            let (jobs, next) = try await queue.reclaim(consumer: configuration.consumer, count: free, cursor: cursor, running: mine)
            reclaimCursor.withLockedValue { $0 = next }
            for job in jobs where job.attempt <= queue.configuration.maxAttempts {
                logger.info("reclaimed a job", metadata: ["jobId": "\(job.id)", "attempt": "\(job.attempt)"])
                ChatMetrics.jobReclaimed()
                start(job)
            }
            for job in jobs where job.attempt > queue.configuration.maxAttempts {
                start(job) { await self.deadLetter(job, reason: "the job was not finished after \(self.queue.configuration.maxAttempts) attempts") }
            }
        } catch {
            logger.warning("reclaiming jobs failed", metadata: ["error": "\(error)"])
        }
    }

    private func drain() async {
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.drainTimeout
        while inFlight > 0, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let left = running.withLockedValue { Array($0.tasks.values) }
        if !left.isEmpty {
            logger.warning("drain timeout passed; leaving running jobs to other workers", metadata: ["jobs": "\(left.count)"])
            left.forEach { $0.task.cancel() }
            for entry in left { await entry.task.value }
        }
    }

    private func every(_ interval: Duration, _ body: @Sendable () async -> Void) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            await body()
        }
    }
}

import Foundation

/// Names and timings of a job queue.
public struct JobQueueConfiguration: Sendable {
    /// The stream jobs are added to.
    public var stream: String
    /// The consumer group every worker joins.
    public var group: String
    /// Where jobs go after their last attempt.
    public var deadLetterStream: String
    /// A job not heartbeated for this long is taken over by another worker.
    public var visibilityTimeout: Duration
    /// How many deliveries a job gets before it is dead-lettered.
    public var maxAttempts: Int
    /// The dead-letter stream's approximate cap.
    public var deadLetterMaxLength: Int

    /// The layout of ARCHITECTURE.md: `chat:jobs`, group `chat-workers`, dead letters in `chat:jobs:dead`.
    public init(
        stream: String = "chat:jobs", group: String = "chat-workers", deadLetterStream: String = "chat:jobs:dead",
        visibilityTimeout: Duration = .seconds(30), maxAttempts: Int = 3, deadLetterMaxLength: Int = 10_000
    ) {
        self.stream = stream
        self.group = group
        self.deadLetterStream = deadLetterStream
        self.visibilityTimeout = visibilityTimeout
        self.maxAttempts = maxAttempts
        self.deadLetterMaxLength = deadLetterMaxLength
    }
}

/// A job as a worker holds it.
public struct QueuedJob<Payload: Sendable>: Sendable {
    /// The job's own id (chosen by whoever enqueued it).
    public var id: String
    /// The stream entry that carries the job; acks and heartbeats name it.
    public var entryID: String
    public var payload: Payload
    /// 1 for the first delivery, 2 for the first re-run after a reclaim, and so on.
    public var attempt: Int
}

/// Jobs in a Redis stream read through a consumer group: at-least-once delivery, heartbeats that keep a
/// running job from being reclaimed, reclaiming of jobs whose worker went quiet, and a dead-letter stream.
///
/// Entries carry `jobId`, `payload` (JSON) and `enqueuedAt`. An acknowledged job is deleted from the stream,
/// so the stream holds only unfinished work and is never trimmed (trimming could drop a pending job).
public final class JobQueue<Payload: Codable & Sendable>: Sendable {
    /// The queue's names and timings.
    public let configuration: JobQueueConfiguration
    let redis: RedisClient

    /// A queue over `redis`; call `prepare()` once before consuming.
    public init(redis: RedisClient, configuration: JobQueueConfiguration = JobQueueConfiguration()) {
        self.redis = redis
        self.configuration = configuration
    }

    /// Creates the stream and the consumer group if they do not exist.
    public func prepare() async throws {
        try await redis.xgroupCreate(configuration.stream, group: configuration.group)
    }

    /// Adds a job; returns its stream entry id.
    @discardableResult
    public func enqueue(id: String, payload: Payload) async throws -> String {
        try await redis.xadd(configuration.stream, fields: try Self.fields(id: id, payload: payload))
    }

    /// The fields of a job entry, for callers that enqueue inside a pipeline or a script.
    public static func fields(id: String, payload: Payload) throws -> [(String, String)] {
        let json = String(decoding: try JSONEncoder().encode(payload), as: UTF8.self)
        return [("jobId", id), ("payload", json), ("enqueuedAt", String(Int64(Date().timeIntervalSince1970 * 1000)))]
    }

    /// New jobs for `consumer`, at most `count`, waiting up to `block` for one to arrive.
    public func receive(consumer: String, count: Int, block: Duration) async throws -> [QueuedJob<Payload>] {
        let entries = try await redis.xreadgroup(
            group: configuration.group, consumer: consumer, key: configuration.stream, count: count, block: block
        )
        var jobs: [QueuedJob<Payload>] = []
        for entry in entries {
            if let job = try await decodeOrDeadLetter(entry, attempt: 1) { jobs.append(job) }
        }
        return jobs
    }

    /// Marks the job done and removes it from the stream.
    public func acknowledge(_ job: QueuedJob<Payload>) async throws {
        try await redis.pipelineChecked([
            RedisCommand("XACK", configuration.stream, configuration.group, job.entryID),
            RedisCommand("XDEL", configuration.stream, job.entryID),
        ])
    }

    /// Resets the idle time of the jobs `consumer` still holds, so they are not reclaimed; returns the entry
    /// ids it no longer holds (another worker took them over), which the caller should stop working on.
    public func heartbeat(consumer: String, entryIDs: [String]) async throws -> Set<String> {
        guard !entryIDs.isEmpty else { return [] }
        let reply = try await redis.evaluate(
            JobQueueScripts.heartbeat, keys: [configuration.stream], arguments: [configuration.group, consumer] + entryIDs
        )
        return Set((reply.array ?? []).compactMap(\.string))
    }

    /// Takes over jobs idle past the visibility timeout. Jobs with attempts left come back to run again;
    /// jobs past their last attempt are moved to the dead-letter stream and come back in `deadLettered`
    /// (with the attempt they would have been), so the caller can tell their clients and settle their costs.
    /// Scans from `cursor` (`0-0` = the start of the pending list); `next` is where the following call goes on,
    /// `0-0` once the whole list was scanned, so that old heartbeated jobs at the front never hide idle ones.
    public func reclaim(
        consumer: String, count: Int, cursor: String = "0-0"
    ) async throws -> (jobs: [QueuedJob<Payload>], deadLettered: [QueuedJob<Payload>], next: String) {
        let claimed = try await redis.xautoclaim(
            configuration.stream, group: configuration.group, consumer: consumer,
            minIdle: configuration.visibilityTimeout, start: cursor, count: count
        )
        if !claimed.deleted.isEmpty {
            // Pending entries whose stream entry is gone cannot be run: drop them from the pending list.
            try await redis.xack(configuration.stream, group: configuration.group, ids: claimed.deleted)
        }
        var jobs: [QueuedJob<Payload>] = []
        var deadLettered: [QueuedJob<Payload>] = []
        for entry in claimed.entries {
            let pending = try await redis.xpending(
                configuration.stream, group: configuration.group, start: entry.id, end: entry.id, count: 1
            )
            guard let job = try await decodeOrDeadLetter(entry, attempt: pending.first?.deliveries ?? configuration.maxAttempts + 1)
            else { continue }
            if job.attempt > configuration.maxAttempts {
                try await deadLetter(job, reason: "the job was not finished after \(configuration.maxAttempts) attempts")
                deadLettered.append(job)
            } else {
                jobs.append(job)
            }
        }
        return (jobs, deadLettered, claimed.cursor)
    }

    /// Moves the job to the dead-letter stream with `reason`, acknowledges and removes it, atomically.
    public func deadLetter(_ job: QueuedJob<Payload>, reason: String) async throws {
        let payload = String(decoding: try JSONEncoder().encode(job.payload), as: UTF8.self)
        try await deadLetter(entryID: job.entryID, jobID: job.id, payload: payload, attempt: job.attempt, reason: reason)
    }

    private func deadLetter(entryID: String, jobID: String, payload: String, attempt: Int, reason: String) async throws {
        try await redis.evaluate(
            JobQueueScripts.deadLetter,
            keys: [configuration.stream, configuration.deadLetterStream],
            arguments: [
                configuration.group, entryID, String(configuration.deadLetterMaxLength),
                jobID, payload, String(attempt), reason,
            ]
        )
    }

    /// The dead-lettered jobs, oldest first.
    public func deadLetters(count: Int = 100) async throws -> [StreamEntry] {
        try await redis.xrange(configuration.deadLetterStream, count: count)
    }

    /// How many jobs are delivered and not yet acknowledged.
    public func pendingCount() async throws -> Int {
        try await redis.xpendingCount(configuration.stream, group: configuration.group)
    }

    /// The job an entry carries; an entry whose payload does not decode can never run, so it goes
    /// straight to the dead-letter stream and nil comes back.
    private func decodeOrDeadLetter(_ entry: StreamEntry, attempt: Int) async throws -> QueuedJob<Payload>? {
        let jobID = entry.fields["jobId"] ?? entry.id
        let raw = entry.fields["payload"] ?? ""
        if let payload = try? JSONDecoder().decode(Payload.self, from: Data(raw.utf8)) {
            return QueuedJob(id: jobID, entryID: entry.id, payload: payload, attempt: attempt)
        }
        try await deadLetter(entryID: entry.id, jobID: jobID, payload: raw, attempt: attempt, reason: "the job's payload is not valid")
        return nil
    }
}

/// The Lua scripts of the job queue (generic types cannot hold static stored properties).
enum JobQueueScripts {
    /// Resets the idle time of entries still owned by ARGV[2]; returns those it does not own any more.
    static let heartbeat = RedisScript(
        """
        local lost = {}
        for i = 3, #ARGV do
          local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
          if #p == 1 and p[1][2] == ARGV[2] then
            redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
          else
            table.insert(lost, ARGV[i])
          end
        end
        return lost
        """
    )

    /// XADD to the dead-letter stream, XACK and XDEL the job entry, as one step.
    static let deadLetter = RedisScript(
        """
        redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
          'jobId', ARGV[4], 'payload', ARGV[5], 'attempts', ARGV[6], 'reason', ARGV[7], 'sourceEntry', ARGV[2])
        redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
        redis.call('XDEL', KEYS[1], ARGV[2])
        return 1
        """
    )
}

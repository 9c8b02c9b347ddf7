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
        visibilityTimeout: Duration = .seconds(5), maxAttempts: Int = 3, deadLetterMaxLength: Int = 10_000
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
    /// 1 for the first delivery, 2 for the first re-run after a reclaim, and so on: the entry's delivery count
    /// when this worker took it. It is the job's fencing token: an ack, heartbeat or dead letter of this
    /// attempt is refused once another worker took the entry over (its count moved on).
    public var attempt: Int
    /// The consumer that took it.
    public var consumer: String

    /// A job held by `consumer` at `attempt`.
    public init(id: String, entryID: String, payload: Payload, attempt: Int, consumer: String = "") {
        self.id = id
        self.entryID = entryID
        self.payload = payload
        self.attempt = attempt
        self.consumer = consumer
    }
}

/// What became of an acknowledgement.
public enum AckResult: Sendable, Equatable {
    /// The job was this attempt's: it is acknowledged and removed from the stream.
    case acked
    /// Nothing was pending under that entry any more (acknowledged or dead-lettered before).
    case alreadyDone
    /// Another consumer, or a later attempt, holds the entry: nothing was changed.
    case notOwner
}

/// Thrown by work done for an attempt that is no longer the job's current one (another worker took the job
/// over, or it ended meanwhile): the effect was refused, and the attempt must stop without a trace.
public struct JobFenced: Error, Sendable, CustomStringConvertible {
    /// The job and the attempt whose effect was refused.
    public var jobID: String
    public var attempt: Int

    /// A refusal of `attempt` of `jobID`.
    public init(jobID: String, attempt: Int) {
        self.jobID = jobID
        self.attempt = attempt
    }

    public var description: String { "attempt \(attempt) of job \(jobID) is no longer current" }
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
            if let job = try await decodeOrDeadLetter(entry, attempt: 1, consumer: consumer) { jobs.append(job) }
        }
        return jobs
    }

    /// Acknowledges the job and removes it from the stream, if its entry is still held by the job's consumer at
    /// the job's attempt; a former holder's acknowledgement changes nothing.
    @discardableResult
    public func acknowledge(_ job: QueuedJob<Payload>) async throws -> AckResult {
        let reply = try await redis.evaluate(
            JobQueueScripts.acknowledge, keys: [configuration.stream],
            arguments: [configuration.group, job.entryID, job.consumer, String(job.attempt)]
        )
        switch reply.int {
        case 1: return .acked
        case 0: return .alreadyDone
        default: return .notOwner
        }
    }

    /// Resets the idle time of the jobs `consumer` still holds at their attempts, so they are not reclaimed, in
    /// one round trip; returns the entry ids it no longer holds (taken over, or gone), whose work must stop.
    public func heartbeat(consumer: String, jobs: [(entryID: String, attempt: Int)]) async throws -> Set<String> {
        guard !jobs.isEmpty else { return [] }
        let reply = try await redis.evaluate(
            JobQueueScripts.heartbeat, keys: [configuration.stream],
            arguments: [configuration.group, consumer] + jobs.flatMap { [$0.entryID, String($0.attempt)] }
        )
        return Set((reply.array ?? []).compactMap(\.string))
    }

    /// Takes over jobs idle past the visibility timeout, at most `count`, each at its next attempt; a job past
    /// its last attempt comes back too (`attempt > maxAttempts`), for the caller to dead-letter and abandon.
    /// Entries `consumer` itself is still running (listed in `running`) are only refreshed, never taken again,
    /// so a running job's attempt stays its entry's delivery count. Scans from `cursor` (`0-0` = the start of
    /// the pending list); `next` is where the following call goes on, `0-0` once the whole list was scanned, so
    /// that old heartbeated jobs at the front never hide idle ones.
    public func reclaim(
        consumer: String, count: Int, cursor: String = "0-0", running: Set<String> = []
    ) async throws -> (jobs: [QueuedJob<Payload>], next: String) {
        let reply = try await redis.evaluate(
            JobQueueScripts.claimIdle, keys: [configuration.stream],
            arguments: [configuration.group, consumer, String(configuration.visibilityTimeout.milliseconds), cursor, String(count)] + running.sorted()
        )
        guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let rows = parts[1].array else {
            throw RedisClientError(.unexpectedReply, "the claim script returned \(reply)")
        }
        var jobs: [QueuedJob<Payload>] = []
        for row in rows {
            guard let fields = row.array, fields.count == 3, let id = fields[0].string, let deliveries = fields[1].int,
                let entry = try RedisClient.streamEntry(.array([.bulkString(Array(id.utf8)), fields[2]]))
            else { continue }
            if let job = try await decodeOrDeadLetter(entry, attempt: deliveries, consumer: consumer) { jobs.append(job) }
        }
        return (jobs, next)
    }

    /// Moves the job to the dead-letter stream with `reason`, acknowledges and removes it, atomically, if its
    /// entry is still held by the job's consumer at the job's attempt; returns whether it did.
    @discardableResult
    public func deadLetter(_ job: QueuedJob<Payload>, reason: String) async throws -> Bool {
        let payload = String(decoding: try JSONEncoder().encode(job.payload), as: UTF8.self)
        return try await deadLetter(entryID: job.entryID, jobID: job.id, payload: payload, attempt: job.attempt, consumer: job.consumer, reason: reason)
    }

    private func deadLetter(entryID: String, jobID: String, payload: String, attempt: Int, consumer: String, reason: String) async throws -> Bool {
        try await redis.evaluate(
            JobQueueScripts.deadLetter,
            keys: [configuration.stream, configuration.deadLetterStream],
            arguments: [
                configuration.group, entryID, String(configuration.deadLetterMaxLength),
                jobID, payload, String(attempt), reason, consumer,
            ]
        ).int == 1
    }

    /// The dead-lettered jobs, oldest first.
    public func deadLetters(count: Int = 100) async throws -> [StreamEntry] {
        try await redis.xrange(configuration.deadLetterStream, count: count)
    }

    /// The queue's backlog now, in one pipeline: jobs waiting for a worker, jobs delivered and not yet finished,
    /// the age of the oldest unfinished job (finished entries leave the stream, so its first entry is the oldest
    /// one waiting or running; by Redis's clock), and the dead letters kept.
    public func backlog() async throws -> QueueBacklog {
        let replies = try await redis.pipeline([
            RedisCommand("XLEN", configuration.stream),
            RedisCommand("XPENDING", configuration.stream, configuration.group),
            RedisCommand("XRANGE", configuration.stream, "-", "+", "COUNT", "1"),
            RedisCommand("TIME"),
            RedisCommand("XLEN", configuration.deadLetterStream),
        ])
        guard replies.count == 5, let length = replies[0].int, let time = replies[3].array, time.count == 2,
            let seconds = time[0].int, let micros = time[1].int
        else { throw RedisClientError(.unexpectedReply, "unexpected answers to the backlog's pipeline") }
        let pending = replies[1].array?.first?.int ?? 0
        let now = seconds * 1_000 + micros / 1_000
        var oldest: Duration = .zero
        if let first = replies[2].array?.first?.array?.first?.string, let millis = first.split(separator: "-").first.flatMap({ Int($0) }) {
            oldest = .milliseconds(max(0, now - millis))
        }
        return QueueBacklog(waiting: max(0, length - pending), pending: pending, oldestJobAge: oldest, deadLetters: replies[4].int ?? 0)
    }

    /// How many jobs wait for a worker (in the stream and not yet delivered), in one pipeline.
    public func waitingCount() async throws -> Int {
        let replies = try await redis.pipeline([
            RedisCommand("XLEN", configuration.stream), RedisCommand("XPENDING", configuration.stream, configuration.group),
        ])
        guard replies.count == 2, let length = replies[0].int else {
            throw RedisClientError(.unexpectedReply, "unexpected answers to the waiting count's pipeline")
        }
        return max(0, length - (replies[1].array?.first?.int ?? 0))
    }

    /// Takes `consumer` out of the consumer group if it holds no delivered, unacknowledged job (a worker that
    /// drained); returns whether it did. Otherwise it stays, so that its jobs are still reclaimed by others.
    /// Without this, every worker that ever started would stay listed in the group for ever.
    @discardableResult
    public func leave(consumer: String) async throws -> Bool {
        try await redis.evaluate(JobQueueScripts.leave, keys: [configuration.stream], arguments: [configuration.group, consumer]).int == 1
    }

    /// How many jobs are delivered and not yet acknowledged.
    public func pendingCount() async throws -> Int {
        try await redis.xpendingCount(configuration.stream, group: configuration.group)
    }

    /// The job an entry carries; an entry whose payload does not decode can never run, so it goes
    /// straight to the dead-letter stream and nil comes back.
    private func decodeOrDeadLetter(_ entry: StreamEntry, attempt: Int, consumer: String) async throws -> QueuedJob<Payload>? {
        let jobID = entry.fields["jobId"] ?? entry.id
        let raw = entry.fields["payload"] ?? ""
        if let payload = try? JSONDecoder().decode(Payload.self, from: Data(raw.utf8)) {
            return QueuedJob(id: jobID, entryID: entry.id, payload: payload, attempt: attempt, consumer: consumer)
        }
        // Whether it moved (it may have been taken over meanwhile), the entry is not ours to run.
        _ = try await deadLetter(
            entryID: entry.id, jobID: jobID, payload: raw, attempt: attempt, consumer: consumer, reason: "the job's payload is not valid"
        )
        return nil
    }
}

/// A queue's backlog at one moment (`JobQueue.backlog()`).
public struct QueueBacklog: Sendable, Equatable {
    /// Jobs in the stream no worker has taken yet.
    public var waiting: Int
    /// Jobs a worker took and has not finished (acknowledged) yet.
    public var pending: Int
    /// How long ago the oldest unfinished job (waiting or pending) was enqueued; zero when there is none.
    public var oldestJobAge: Duration
    /// Entries in the dead-letter stream.
    public var deadLetters: Int
}

/// The Lua scripts of the job queue (generic types cannot hold static stored properties). Each effect on an
/// entry first checks that the entry is still pending for the consumer and at the delivery count (attempt)
/// the caller holds it at, in the same script: the fence against a worker that stalled and lost its job.
enum JobQueueScripts {
    /// KEYS: stream. ARGV: group, consumer. Deletes the consumer when it has nothing pending.
    static let leave = RedisScript(
        """
        local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
        if #pending > 0 then return 0 end
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
        return 1
        """
    )

    /// KEYS: stream. ARGV: group, entry id, consumer, attempt. Returns 1 (acked and deleted), 0 (nothing
    /// pending under that id) or -1 (held by another consumer or at another attempt: untouched).
    static let acknowledge = RedisScript(
        """
        local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
        if #p == 0 then return 0 end
        if p[1][2] ~= ARGV[3] or tostring(p[1][4]) ~= ARGV[4] then return -1 end
        redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
        redis.call('XDEL', KEYS[1], ARGV[2])
        return 1
        """
    )

    /// KEYS: stream. ARGV: group, consumer, then (entry id, attempt) pairs. Resets the idle time of the entries
    /// still held by the consumer at that attempt (`JUSTID`: the delivery count stays); returns the others.
    static let heartbeat = RedisScript(
        """
        local lost = {}
        for i = 3, #ARGV, 2 do
          local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
          if #p == 1 and p[1][2] == ARGV[2] and tostring(p[1][4]) == ARGV[i + 1] then
            redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
          else
            table.insert(lost, ARGV[i])
          end
        end
        return lost
        """
    )

    /// KEYS: stream. ARGV: group, consumer, min idle ms, cursor, count, then the ids the consumer is running.
    /// Scans the pending entries idle at least min idle after the cursor: one the consumer is still running is
    /// refreshed (`JUSTID`); any other is claimed (its delivery count goes up by one) and returned as
    /// {id, deliveries, fields}; one whose stream entry is gone is acknowledged. Returns {next cursor, claimed}.
    static let claimIdle = RedisScript(
        """
        local running = {}
        for i = 6, #ARGV do running[ARGV[i]] = true end
        local start = '-'
        if ARGV[4] ~= '0-0' then start = '(' .. ARGV[4] end
        local rows = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], start, '+', ARGV[5])
        local claimed = {}
        local last = '0-0'
        for _, row in ipairs(rows) do
          local id = row[1]
          last = id
          if row[2] == ARGV[2] and running[id] then
            redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
          else
            local entries = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], id)
            if #entries == 1 and entries[1] and entries[1][2] then
              table.insert(claimed, {id, row[4] + 1, entries[1][2]})
            elseif #entries == 0 or not entries[1] then
              redis.call('XACK', KEYS[1], ARGV[1], id)
            end
          end
        end
        local nextCursor = '0-0'
        if #rows == tonumber(ARGV[5]) then nextCursor = last end
        return {nextCursor, claimed}
        """
    )

    /// KEYS: stream, dead-letter stream. ARGV: group, entry id, dead-letter max length, job id, payload,
    /// attempt, reason, consumer. XADD to the dead-letter stream, XACK and XDEL the job entry, as one step, if
    /// the entry is still held by the consumer at that attempt; returns 1 if done, 0 or -1 (as `acknowledge`).
    static let deadLetter = RedisScript(
        """
        local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
        if #p == 0 then return 0 end
        if p[1][2] ~= ARGV[8] or tostring(p[1][4]) ~= ARGV[6] then return -1 end
        redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
          'jobId', ARGV[4], 'payload', ARGV[5], 'attempts', ARGV[6], 'reason', ARGV[7], 'sourceEntry', ARGV[2])
        redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
        redis.call('XDEL', KEYS[1], ARGV[2])
        return 1
        """
    )
}

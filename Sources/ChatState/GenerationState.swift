import ChatCore
import Foundation
import NIOCore
import Queue

/// A generation job's lifecycle states, as `chat:job:{jobId}` records them.
public enum JobStatus: String, Sendable, Codable {
    case queued, running, completed, failed, cancelled

    /// Whether the job has ended.
    public var isFinal: Bool { self == .completed || self == .failed || self == .cancelled }
}

/// What `chat:job:{jobId}` holds about a job.
public struct JobRecord: Sendable, Equatable {
    public var jobID: String
    public var sessionID: String
    public var userID: String
    public var modelID: String
    public var status: JobStatus
    /// The session's last event id before the job was enqueued: its events come after it.
    public var startEventID: String
    /// The attempt now running (0 while queued).
    public var attempt: Int
    /// The final result's JSON (the `complete` event's body), or the error's.
    public var result: String?
    public var error: String?

    /// Creates a record.
    public init(
        jobID: String, sessionID: String, userID: String, modelID: String, status: JobStatus, startEventID: String,
        attempt: Int = 0, result: String? = nil, error: String? = nil
    ) {
        self.jobID = jobID
        self.sessionID = sessionID
        self.userID = userID
        self.modelID = modelID
        self.status = status
        self.startEventID = startEventID
        self.attempt = attempt
        self.result = result
        self.error = error
    }
}

/// What a session's cached summary says when a generation is started in it.
public struct SessionSummary: Sendable, Equatable {
    /// The model the generation uses: the requested one, else the session's, else the default.
    public var modelID: String
    /// Messages stored in the session.
    public var messageCount: Int
    /// UTF-8 bytes of their text.
    public var contentBytes: Int
}

/// How an attempt to start a generation in a session came out.
public enum BeginOutcome: Sendable, Equatable {
    /// The session is claimed and the job recorded as queued.
    case started(JobRecord, SessionSummary)
    /// Another generation runs in the session.
    case busy
    /// The session does not exist, was deleted, or is not the caller's.
    case notFound
    /// The cache does not know the session: fill it from the database and try again.
    case unknownSession
}

/// What an attempt of a job produced, committed to the job's record before any of it is stored or billed:
/// whoever finishes the job (this attempt, or a later one after a crash) stores and bills exactly this.
public struct JobOutcome: Codable, Sendable, Equatable {
    /// The attempt that produced it.
    public var attempt: Int
    /// `completed`, `cancelled` or `failed`.
    public var status: JobStatus
    /// The text shown to the client.
    public var text: String
    /// The stop reason reported on `complete`.
    public var stopReason: String
    /// The tokens billed.
    public var inputTokens: Int
    public var outputTokens: Int
    /// The id the reply is stored under (chosen once, so every writer writes the same document); nil when no
    /// reply is stored (a failed run).
    public var replyMessageID: String?
    /// For `complete`: how long the run took, and where its time went.
    public var latencyMs: Int
    public var spans: GenerationSpans?
    /// Why a failed run failed.
    public var failure: String?

    /// Creates an outcome.
    public init(
        attempt: Int, status: JobStatus, text: String, stopReason: String, inputTokens: Int, outputTokens: Int, replyMessageID: String?,
        latencyMs: Int = 0, spans: GenerationSpans? = nil, failure: String? = nil
    ) {
        self.attempt = attempt
        self.status = status
        self.text = text
        self.stopReason = stopReason
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.replyMessageID = replyMessageID
        self.latencyMs = latencyMs
        self.spans = spans
        self.failure = failure
    }
}

/// How a worker's start of a run came out.
public enum RunStart: Sendable, Equatable {
    /// The job has no record (Redis lost it, or it expired): it cannot be run.
    case gone
    /// This attempt, or a later one, already started: this one is stale and must stop.
    case stale
    /// An earlier attempt committed its outcome and stopped before finishing: finish from it, without calling
    /// the model again (nothing was published).
    case committed(JobOutcome)
    /// The job has already ended (a delivery after its end): nothing to do.
    case ended
    /// The session was deleted.
    case sessionDeleted
    /// The run started; `history` is nil when the cache does not hold it whole (read the database), and
    /// `sessionKnown` false when the cache does not know the session at all. `cancelRequested` tells that the
    /// user asked to stop before the run began.
    case started(history: [HistoryTurn]?, sessionKnown: Bool, cancelRequested: Bool)
}

/// How a commit of an outcome came out.
public enum CommitResult: Sendable, Equatable {
    /// Committed.
    case committed
    /// An outcome was committed before (by this attempt: a retried call); the record keeps that one.
    case alreadyCommitted
    /// The attempt is no longer the job's current one, or the job ended: nothing was written.
    case refused
}

/// How an end came out.
public enum EndResult: Sendable, Equatable {
    /// The job ended now.
    case ended
    /// It had ended before: nothing changed.
    case alreadyEnded
    /// A later attempt runs the job: nothing changed.
    case stale
}

/// How a job ended, for `GenerationState.end`.
public struct JobEnding: Sendable {
    /// `completed`, `cancelled` or `failed`.
    public var status: JobStatus
    /// The last event (`complete` or `error`).
    public var event: ChatEvent
    /// The turns to add to the session's cached history (the user's message, the reply if it completed).
    public var turns: [HistoryTurn]
    /// Messages stored in the database by the job, and the bytes of their text.
    public var storedMessages: Int
    public var storedBytes: Int

    /// Creates an ending.
    public init(status: JobStatus, event: ChatEvent, turns: [HistoryTurn] = [], storedMessages: Int = 0, storedBytes: Int = 0) {
        self.status = status
        self.event = event
        self.turns = turns
        self.storedMessages = storedMessages
        self.storedBytes = storedBytes
    }
}

/// The live state of generations in Redis: each job's status (`chat:job:{jobId}`, expiring a day after it
/// ends), the one running generation per session (`chat:session:{sessionId}:active`), the set of sessions
/// with one (`chat:sessions:active`), and cancellation requests (the flag `chat:job:{jobId}:cancel`, and the
/// stream `chat:cancels` that every worker reads once for all its jobs). Starting and ending a generation
/// are one script each, together with the session cache and the session's events.
public final class GenerationState: Sendable {
    let redis: RedisClient
    let events: SessionEventsConfiguration
    let cache: SessionCache
    /// How long a session stays locked without its worker renewing the lock.
    public let lockTTL: Duration
    /// How long a finished job's record is kept.
    public let recordTTL: Duration
    /// Deadlines of the open jobs (`chat:jobs:open`), after which the sweeper ends a job nothing else will:
    /// begun but not enqueued within `enqueueGrace`; enqueued but not started within `queueTimeout`; started
    /// but not renewed by its worker within `lease`.
    public let enqueueGrace: Duration
    public let queueTimeout: Duration
    public let lease: Duration
    /// Where settlements are parked for the workers' retry loop (`pendingSettlementsKey`; tests use their own).
    public let settlementsKey: String

    /// State over `redis`.
    public init(
        redis: RedisClient, events: SessionEventsConfiguration = SessionEventsConfiguration(), cache: SessionCache? = nil,
        lockTTL: Duration = .seconds(600), recordTTL: Duration = .seconds(86_400), enqueueGrace: Duration = .seconds(30),
        queueTimeout: Duration = .seconds(120), lease: Duration = .seconds(60), settlementsKey: String = GenerationState.pendingSettlementsKey
    ) {
        self.settlementsKey = settlementsKey
        self.redis = redis
        self.events = events
        self.cache = cache ?? SessionCache(redis: redis)
        self.lockTTL = lockTTL
        self.recordTTL = recordTTL
        self.enqueueGrace = enqueueGrace
        self.queueTimeout = queueTimeout
        self.lease = lease
    }

    static func jobKey(_ jobID: String) -> String { "chat:job:{\(jobID)}" }
    static func lockKey(_ sessionID: String) -> String { "chat:session:{\(sessionID)}:active" }
    static func cancelKey(_ jobID: String) -> String { "chat:job:{\(jobID)}:cancel" }
    static let activeSessionsKey = "chat:sessions:active"
    /// Every job not ended yet, scored by its deadline (milliseconds since 1970).
    static let openJobsKey = "chat:jobs:open"
    /// Settlements waiting for the accounting service (one JSON `PendingSettlement` per reservation id), retried
    /// by every worker.
    public static let pendingSettlementsKey = "chat:settlements:pending"
    /// Settlements given up (the accounting service refuses them, or they failed for too long), kept for an
    /// operator with their last error, one JSON `PendingSettlement` per reservation id.
    public static let failedSettlementsKey = "chat:settlements:failed"
    /// The stream of cancellation requests every worker reads.
    public static let cancelsKey = "chat:cancels"

    /// Claims the session for a new job of `userID` and records it as queued, in one script that also checks
    /// the session's owner in the cache and finds where the job's events will start. `requestedModel` nil:
    /// the session's model, else `defaultModel`. `message` is kept on the record while the job runs, so that
    /// the session's messages show it before the worker stores it.
    public func begin(
        jobID: String, sessionID: String, userID: String, requestedModel: String?, defaultModel: String, message: String, messageID: String,
        reservationID: String = "", createdAt: Date = Date()
    ) async throws -> BeginOutcome {
        let now = String(Int64((createdAt.timeIntervalSince1970 * 1000).rounded(.down)))
        let reply = try await redis.evaluate(
            GenerationScripts.begin,
            keys: [
                SessionCache.metaKey(sessionID), Self.lockKey(sessionID), Self.jobKey(jobID), Self.activeSessionsKey, SessionEvents.key(sessionID: sessionID),
                SessionCache.historyKey(sessionID), Self.openJobsKey,
            ],
            arguments: [
                jobID, String(lockTTL.milliseconds), sessionID, userID, requestedModel ?? "", defaultModel, now, String(cache.ttl.milliseconds),
                message, messageID, String(recordTTL.milliseconds), reservationID, String(enqueueGrace.milliseconds),
            ]
        )
        let values = reply.array ?? []
        switch values.first?.string {
        case "ok":
            guard values.count == 5, let start = values[1].string, let model = values[2].string else {
                throw RedisClientError(.unexpectedReply, "begin returned \(reply)")
            }
            let record = JobRecord(jobID: jobID, sessionID: sessionID, userID: userID, modelID: model, status: .queued, startEventID: start)
            return .started(record, SessionSummary(modelID: model, messageCount: values[3].int ?? 0, contentBytes: values[4].int ?? 0))
        case "busy": return .busy
        case "notfound": return .notFound
        case "miss": return .unknownSession
        default: throw RedisClientError(.unexpectedReply, "begin returned \(reply)")
        }
    }

    /// Starts `attempt` of a job in one script: unless the job already ended or this attempt is stale (the
    /// record's attempt is this one or later), records it running at this attempt (from now on, every effect
    /// of an earlier attempt is refused), renews (or takes back, if it lapsed) the session's lock, and, unless
    /// an earlier attempt committed its outcome, publishes `reset` (a re-run) and `model` and returns the
    /// session's cached history and whether a cancellation was already asked for.
    public func startRun(jobID: String, sessionID: String, attempt: Int, reset: ChatEvent?, model: ChatEvent) async throws -> RunStart {
        let reply = try await redis.evaluate(
            GenerationScripts.startRun,
            keys: [
                Self.jobKey(jobID), Self.lockKey(sessionID), Self.activeSessionsKey, SessionCache.metaKey(sessionID),
                SessionCache.historyKey(sessionID), SessionEvents.key(sessionID: sessionID), Self.cancelKey(jobID), Self.openJobsKey,
            ],
            arguments: [
                jobID, String(attempt), String(lockTTL.milliseconds), sessionID, String(events.maxLength), String(events.idleExpiry.milliseconds),
                try reset?.encoded() ?? "", try model.encoded(), String(lease.milliseconds),
            ]
        )
        let values = reply.array ?? []
        switch values.first?.string {
        case "gone": return .gone
        case "stale": return .stale
        case "committed":
            guard values.count == 2, let json = values[1].string else { throw RedisClientError(.unexpectedReply, "startRun returned \(reply)") }
            return .committed(try JSONDecoder().decode(JobOutcome.self, from: Data(json.utf8)))
        case "ended": return .ended
        case "deleted": return .sessionDeleted
        case "miss": return .started(history: nil, sessionKnown: false, cancelRequested: values.count > 1 && values[1].int == 1)
        case "nohistory": return .started(history: nil, sessionKnown: true, cancelRequested: values.count > 1 && values[1].int == 1)
        case "ok":
            guard values.count == 3 else { throw RedisClientError(.unexpectedReply, "startRun returned \(reply)") }
            return .started(history: SessionCache.turns(values[2]), sessionKnown: true, cancelRequested: values[1].int == 1)
        default: throw RedisClientError(.unexpectedReply, "startRun returned \(reply)")
        }
    }

    /// Publishes a job's last event and records its end in one script: the record's status and result, the
    /// session freed if the job still holds it, the cancel flag dropped, and the session's cached counts and
    /// history brought up to date (a failed job's history is forgotten instead: the database has the truth).
    /// Refused (`.stale`) when a later attempt than `attempt` started.
    @discardableResult
    public func end(jobID: String, sessionID: String, attempt: Int, _ ending: JobEnding) async throws -> EndResult {
        let body = try ending.event.encoded()
        let failed = ending.status == .failed
        let reply = try await redis.evaluate(
            GenerationScripts.end,
            keys: [
                Self.lockKey(sessionID), Self.jobKey(jobID), Self.activeSessionsKey, Self.cancelKey(jobID), SessionEvents.key(sessionID: sessionID),
                SessionCache.metaKey(sessionID), SessionCache.historyKey(sessionID), Self.openJobsKey,
            ],
            arguments: [
                jobID, ending.status.rawValue, ending.event.type.rawValue, body, String(recordTTL.milliseconds), sessionID,
                String(events.maxLength), String(events.idleExpiry.milliseconds), String(ending.storedMessages), String(ending.storedBytes),
                String(cache.maxHistoryBytes), String(cache.ttl.milliseconds), failed ? "1" : "0", String(attempt),
            ] + (failed ? [] : ending.turns.map { $0.encoded() })
        )
        switch reply.int {
        case 1: return .ended
        case 0: return .alreadyEnded
        default: return .stale
        }
    }

    /// Commits `outcome` (of `outcome.attempt`) to the job's record, if that attempt is still the current one
    /// and nothing was committed yet.
    public func commit(jobID: String, _ outcome: JobOutcome) async throws -> CommitResult {
        let json = String(decoding: try JSONEncoder().encode(outcome), as: UTF8.self)
        let reply = try await redis.evaluate(GenerationScripts.commit, keys: [Self.jobKey(jobID)], arguments: [String(outcome.attempt), json])
        switch reply.string {
        case "ok": return .committed
        case "committed": return .alreadyCommitted
        case "stale", "ended": return .refused
        default: throw RedisClientError(.unexpectedReply, "commit returned \(reply)")
        }
    }

    /// The outcome an attempt of the job committed, if any.
    public func outcome(jobID: String) async throws -> JobOutcome? {
        guard let json = try await redis.send("HGET", Self.jobKey(jobID), "outcome").string else { return nil }
        return try JSONDecoder().decode(JobOutcome.self, from: Data(json.utf8))
    }

    /// Publishes one event of `attempt` of a running job; throws `JobFenced` (nothing published) when the
    /// attempt is no longer the job's current one or the job is not running.
    @discardableResult
    public func publish(jobID: String, sessionID: String, attempt: Int, event: ChatEvent) async throws -> String {
        let reply = try await redis.evaluate(
            GenerationScripts.publish, keys: [Self.jobKey(jobID), SessionEvents.key(sessionID: sessionID)],
            arguments: [String(attempt), String(events.maxLength), jobID, event.type.rawValue, try event.encoded()]
        )
        guard let id = reply.string else { throw JobFenced(jobID: jobID, attempt: attempt) }
        return id
    }

    /// Publishes `attempt`'s chunks in order without waiting for each reply, each fenced as `publish` is.
    public func chunkPublisher(jobID: String, sessionID: String, attempt: Int) -> ChunkPublisher {
        ChunkPublisher(state: self, jobID: jobID, sessionID: sessionID, attempt: attempt)
    }

    /// Forgets a job that was never enqueued (its enqueue failed) and frees its session; false (nothing
    /// changed) if its entry reached the stream (a worker may run it), or it is no longer queued.
    @discardableResult
    public func abandonBeforeEnqueue(jobID: String, sessionID: String) async throws -> Bool {
        try await redis.evaluate(
            GenerationScripts.abandon,
            keys: [Self.lockKey(sessionID), Self.jobKey(jobID), Self.activeSessionsKey, Self.cancelKey(jobID), Self.openJobsKey],
            arguments: [jobID, String(recordTTL.milliseconds), sessionID]
        ).int == 1
    }

    /// Keeps a settlement for the workers' retry loop (`PendingSettlements`).
    public func parkSettlement(_ settlement: PendingSettlement) async throws {
        let json = String(decoding: try JSONEncoder().encode(settlement), as: UTF8.self)
        try await redis.send("HSET", settlementsKey, settlement.reservationID, json)
    }

    /// Adds the job's entry to the jobs `stream`, once (a retry after a lost answer finds the first entry);
    /// nil when the job is no longer queued (abandoned, or ended by the sweeper): then it must not run.
    public func enqueue(jobID: String, stream: String, fields: [(String, String)]) async throws -> String? {
        try await redis.evaluate(
            GenerationScripts.enqueue, keys: [Self.jobKey(jobID), stream, Self.openJobsKey],
            arguments: [String(queueTimeout.milliseconds), jobID] + fields.flatMap { [$0.0, $0.1] }
        ).string
    }

    /// Renews, in one round trip, the leases of running jobs at their attempt and the session locks they still
    /// hold (a
    /// lock the job gave up at its end, or that lapsed, is left alone: taking it back could lock a session
    /// whose job just ended). Returns the ids of the jobs whose attempt is no longer current or that are no
    /// longer running: their runs must stop.
    public func renewLocks(_ jobs: [(jobID: String, sessionID: String, attempt: Int)]) async throws -> Set<String> {
        guard !jobs.isEmpty else { return [] }
        let reply = try await redis.evaluate(
            GenerationScripts.renew,
            keys: [Self.openJobsKey] + jobs.flatMap { [Self.lockKey($0.sessionID), Self.jobKey($0.jobID)] },
            arguments: [String(lockTTL.milliseconds), String(lease.milliseconds)] + jobs.flatMap { [$0.jobID, String($0.attempt)] }
        )
        return Set((reply.array ?? []).compactMap(\.string))
    }

    /// The job's record, or nil if there is none (never existed, or expired).
    public func record(jobID: String) async throws -> JobRecord? {
        let fields = try await redis.hgetall(Self.jobKey(jobID))
        guard let sessionID = fields["sessionId"], let status = fields["status"].flatMap(JobStatus.init(rawValue:)) else { return nil }
        return JobRecord(
            jobID: jobID, sessionID: sessionID, userID: fields["userId"] ?? "", modelID: fields["modelId"] ?? "", status: status,
            startEventID: fields["startEventId"] ?? "0-0", attempt: Int(fields["attempt"] ?? "") ?? 0,
            result: fields["result"].flatMap { $0.isEmpty ? nil : $0 }, error: fields["error"].flatMap { $0.isEmpty ? nil : $0 }
        )
    }

    /// The user's message of a job that has not ended, with the id and time it will be stored under.
    public func pendingMessage(jobID: String) async throws -> (text: String, messageID: String, createdAt: Date)? {
        let values = try await redis.send("HMGET", Self.jobKey(jobID), "message", "messageId", "createdAt").array ?? []
        guard values.count == 3, let text = values[0].string, let id = values[1].string, let created = values[2].int else { return nil }
        return (text, id, Date(timeIntervalSince1970: Double(created) / 1000))
    }

    /// The job's status alone, or nil if it has no record.
    public func status(jobID: String) async throws -> JobStatus? {
        try await redis.send("HGET", Self.jobKey(jobID), "status").string.flatMap(JobStatus.init(rawValue:))
    }

    /// The job running in a session, if any.
    public func activeJob(sessionID: String) async throws -> String? {
        try await redis.get(Self.lockKey(sessionID))
    }

    /// The sessions with a running generation.
    public func activeSessions() async throws -> [String] {
        (try await redis.send("SMEMBERS", Self.activeSessionsKey).array ?? []).compactMap(\.string).sorted()
    }

    /// Asks the job's worker to stop it: the flag (seen by a run that has not started) and one entry on the
    /// stream every worker reads (seen by a running one at once).
    /// Asks the job running in the session now to stop, in one step; returns its id, or nil when none runs.
    public func cancelActive(sessionID: String) async throws -> String? {
        try await redis.evaluate(
            GenerationScripts.cancelActive, keys: [Self.lockKey(sessionID), Self.cancelsKey], arguments: [String(recordTTL.milliseconds), "10000"]
        ).string
    }

    public func requestCancel(jobID: String) async throws {
        try await redis.pipelineChecked([
            RedisCommand("SET", Self.cancelKey(jobID), "1", "PX", String(recordTTL.milliseconds)),
            RedisClient.xaddCommand(Self.cancelsKey, maxLength: 10_000, fields: [("jobId", jobID)]),
        ])
    }

}

/// Publishes one run's chunks pipelined: each chunk is one fenced script call (`GenerationScripts.publish`)
/// written at once, in order, its reply checked later (at the latest by `flush()`, which the run calls before
/// its last event), so a chunk never waits for the previous one's round trip. A refused chunk (the attempt
/// lost the job) makes the next check throw `JobFenced`; the chunks after it are refused too. Used by one task
/// at a time.
public struct ChunkPublisher: Sendable {
    let state: GenerationState
    let jobID: String
    let sessionID: String
    let attempt: Int
    private var outstanding: [EventLoopFuture<RedisValue>] = []

    init(state: GenerationState, jobID: String, sessionID: String, attempt: Int) {
        self.state = state
        self.jobID = jobID
        self.sessionID = sessionID
        self.attempt = attempt
    }

    /// Sends a chunk; with `wait`, returns once Redis stored it (the first chunk waits: that also loads the
    /// script into a Redis that lost it, before the pipelined calls rely on it).
    public mutating func publish(_ chunk: ChunkEvent, wait: Bool = false) async throws {
        if wait {
            try await flush()
            try await state.publish(jobID: jobID, sessionID: sessionID, attempt: attempt, event: .chunk(chunk))
            return
        }
        let script = GenerationScripts.publish
        let command = RedisCommand(
            arguments: [
                "EVALSHA", script.sha1, "2", GenerationState.jobKey(jobID), SessionEvents.key(sessionID: sessionID), String(attempt),
                String(state.events.maxLength), jobID, "chunk", try ChatEvent.chunk(chunk).encoded(),
            ]
        )
        outstanding.append(try await state.redis.sendWithoutWaiting(command))
        if outstanding.count >= 64 { try await flush() }
    }

    /// Waits for every chunk sent so far; throws `JobFenced` if one was refused, or the first failure.
    public mutating func flush() async throws {
        let pending = outstanding
        outstanding = []
        for reply in pending {
            guard try await reply.get().string != nil else { throw JobFenced(jobID: jobID, attempt: attempt) }
        }
    }
}

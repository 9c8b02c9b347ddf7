import ChatCore
import Foundation
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

/// How a worker's start of a run came out.
public enum RunStart: Sendable, Equatable {
    /// The job has already ended (a delivery after its end): nothing to do.
    case ended
    /// The session was deleted.
    case sessionDeleted
    /// The run started; `history` is nil when the cache does not hold it whole (read the database), and
    /// `sessionKnown` false when the cache does not know the session at all. `cancelRequested` tells that the
    /// user asked to stop before the run began.
    case started(history: [HistoryTurn]?, sessionKnown: Bool, cancelRequested: Bool)
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

    /// State over `redis`.
    public init(
        redis: RedisClient, events: SessionEventsConfiguration = SessionEventsConfiguration(), cache: SessionCache? = nil,
        lockTTL: Duration = .seconds(600), recordTTL: Duration = .seconds(86_400)
    ) {
        self.redis = redis
        self.events = events
        self.cache = cache ?? SessionCache(redis: redis)
        self.lockTTL = lockTTL
        self.recordTTL = recordTTL
    }

    static func jobKey(_ jobID: String) -> String { "chat:job:{\(jobID)}" }
    static func lockKey(_ sessionID: String) -> String { "chat:session:{\(sessionID)}:active" }
    static func cancelKey(_ jobID: String) -> String { "chat:job:{\(jobID)}:cancel" }
    static let activeSessionsKey = "chat:sessions:active"
    /// The stream of cancellation requests every worker reads.
    public static let cancelsKey = "chat:cancels"

    /// Claims the session for a new job of `userID` and records it as queued, in one script that also checks
    /// the session's owner in the cache and finds where the job's events will start. `requestedModel` nil:
    /// the session's model, else `defaultModel`. `message` is kept on the record while the job runs, so that
    /// the session's messages show it before the worker stores it.
    public func begin(
        jobID: String, sessionID: String, userID: String, requestedModel: String?, defaultModel: String, message: String, messageID: String,
        createdAt: Date = Date()
    ) async throws -> BeginOutcome {
        let now = String(Int64((createdAt.timeIntervalSince1970 * 1000).rounded(.down)))
        let reply = try await redis.evaluate(
            GenerationScripts.begin,
            keys: [
                SessionCache.metaKey(sessionID), Self.lockKey(sessionID), Self.jobKey(jobID), Self.activeSessionsKey, SessionEvents.key(sessionID: sessionID),
                SessionCache.historyKey(sessionID),
            ],
            arguments: [
                jobID, String(lockTTL.milliseconds), sessionID, userID, requestedModel ?? "", defaultModel, now, String(cache.ttl.milliseconds),
                message, messageID, String(recordTTL.milliseconds),
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

    /// Starts `attempt` of a job in one script: unless the job already ended, records it running, renews (or
    /// takes back, if it lapsed) the session's lock, publishes `reset` (a re-run) and `model`, and returns the
    /// session's cached history and whether a cancellation was already asked for.
    public func startRun(jobID: String, sessionID: String, attempt: Int, reset: ChatEvent?, model: ChatEvent) async throws -> RunStart {
        let reply = try await redis.evaluate(
            GenerationScripts.startRun,
            keys: [
                Self.jobKey(jobID), Self.lockKey(sessionID), Self.activeSessionsKey, SessionCache.metaKey(sessionID),
                SessionCache.historyKey(sessionID), SessionEvents.key(sessionID: sessionID), Self.cancelKey(jobID),
            ],
            arguments: [
                jobID, String(attempt), String(lockTTL.milliseconds), sessionID, String(events.maxLength), String(events.idleExpiry.milliseconds),
                try reset?.encoded() ?? "", try model.encoded(),
            ]
        )
        let values = reply.array ?? []
        switch values.first?.string {
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
    /// Returns the last event's body.
    @discardableResult
    public func end(jobID: String, sessionID: String, _ ending: JobEnding) async throws -> String {
        let body = try ending.event.encoded()
        let failed = ending.status == .failed
        try await redis.evaluate(
            GenerationScripts.end,
            keys: [
                Self.lockKey(sessionID), Self.jobKey(jobID), Self.activeSessionsKey, Self.cancelKey(jobID), SessionEvents.key(sessionID: sessionID),
                SessionCache.metaKey(sessionID), SessionCache.historyKey(sessionID),
            ],
            arguments: [
                jobID, ending.status.rawValue, ending.event.type.rawValue, body, String(recordTTL.milliseconds), sessionID,
                String(events.maxLength), String(events.idleExpiry.milliseconds), String(ending.storedMessages), String(ending.storedBytes),
                String(cache.maxHistoryBytes), String(cache.ttl.milliseconds), failed ? "1" : "0",
            ] + (failed ? [] : ending.turns.map { $0.encoded() })
        )
        return body
    }

    /// Forgets a job that was never enqueued (its enqueue failed) and frees its session; false (nothing
    /// changed) if a worker already started it, its enqueue having succeeded after all.
    @discardableResult
    public func abandonBeforeEnqueue(jobID: String, sessionID: String) async throws -> Bool {
        try await redis.evaluate(
            GenerationScripts.abandon,
            keys: [Self.lockKey(sessionID), Self.jobKey(jobID), Self.activeSessionsKey, Self.cancelKey(jobID)],
            arguments: [jobID, String(recordTTL.milliseconds), sessionID]
        ).int == 1
    }

    /// Renews the session locks of running jobs that still hold them (a lock the job gave up at its end, or
    /// that lapsed, is left alone: taking it back could lock a session whose job just ended).
    public func renewLocks(_ jobs: [(jobID: String, sessionID: String)]) async throws {
        for job in jobs {
            try await redis.evaluate(GenerationScripts.renew, keys: [Self.lockKey(job.sessionID)], arguments: [job.jobID, String(lockTTL.milliseconds)])
        }
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
    public func requestCancel(jobID: String) async throws {
        try await redis.pipelineChecked([
            RedisCommand("SET", Self.cancelKey(jobID), "1", "PX", String(recordTTL.milliseconds)),
            RedisClient.xaddCommand(Self.cancelsKey, maxLength: 10_000, fields: [("jobId", jobID)]),
        ])
    }

}

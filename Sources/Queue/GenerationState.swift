import Foundation

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

/// The live state of generations in Redis: each job's status (`chat:job:{jobId}`, expiring a day after it
/// ends), the one running generation per session (`chat:session:{sessionId}:active`), the set of sessions
/// with one (`chat:sessions:active`), and cancellation requests (`chat:job:{jobId}:cancel`).
public final class GenerationState: Sendable {
    let redis: RedisClient
    /// How long a session stays locked without its worker renewing the lock.
    public let lockTTL: Duration
    /// How long a finished job's record is kept.
    public let recordTTL: Duration

    /// State over `redis`.
    public init(redis: RedisClient, lockTTL: Duration = .seconds(600), recordTTL: Duration = .seconds(86_400)) {
        self.redis = redis
        self.lockTTL = lockTTL
        self.recordTTL = recordTTL
    }

    static func jobKey(_ jobID: String) -> String { "chat:job:{\(jobID)}" }
    static func lockKey(_ sessionID: String) -> String { "chat:session:{\(sessionID)}:active" }
    static func cancelKey(_ jobID: String) -> String { "chat:job:{\(jobID)}:cancel" }
    static let activeSessionsKey = "chat:sessions:active"

    /// Claims the session for `record`'s job and records it as queued, atomically; false if the session
    /// already has a running generation.
    public func begin(_ record: JobRecord) async throws -> Bool {
        let reply = try await redis.evaluate(
            GenerationScripts.begin,
            keys: [Self.lockKey(record.sessionID), Self.jobKey(record.jobID), Self.activeSessionsKey],
            arguments: [
                record.jobID, String(lockTTL.milliseconds), record.sessionID, record.userID, record.modelID, record.startEventID,
                String(Int64(Date().timeIntervalSince1970 * 1000)),
            ]
        )
        return reply.int == 1
    }

    /// Records that `attempt` of the job is running, and renews (or takes back, if it lapsed) the session's lock.
    public func markRunning(jobID: String, sessionID: String, attempt: Int) async throws {
        try await redis.evaluate(
            GenerationScripts.running,
            keys: [Self.jobKey(jobID), Self.lockKey(sessionID), Self.activeSessionsKey],
            arguments: [String(attempt), jobID, String(lockTTL.milliseconds), sessionID]
        )
    }

    /// Renews the session's lock while its job runs (taking it back if it lapsed and nobody else holds it).
    public func renewLock(jobID: String, sessionID: String) async throws {
        try await redis.evaluate(
            GenerationScripts.renew, keys: [Self.lockKey(sessionID)], arguments: [jobID, String(lockTTL.milliseconds)]
        )
    }

    /// Records the job's end with its result or error, frees the session if the job still holds it, and
    /// starts the record's expiry.
    public func finish(jobID: String, sessionID: String, status: JobStatus, result: String?, error: String?) async throws {
        try await redis.evaluate(
            GenerationScripts.finish,
            keys: [Self.lockKey(sessionID), Self.jobKey(jobID), Self.activeSessionsKey, Self.cancelKey(jobID)],
            arguments: [jobID, status.rawValue, result ?? "", error ?? "", String(recordTTL.milliseconds), sessionID]
        )
    }

    /// Forgets a job that was never enqueued (its enqueue failed) and frees its session.
    public func abandonBeforeEnqueue(jobID: String, sessionID: String) async throws {
        try await finish(jobID: jobID, sessionID: sessionID, status: .failed, result: nil, error: "the job could not be queued")
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

    /// The job running in a session, if any.
    public func activeJob(sessionID: String) async throws -> String? {
        try await redis.get(Self.lockKey(sessionID))
    }

    /// The sessions with a running generation.
    public func activeSessions() async throws -> [String] {
        (try await redis.send("SMEMBERS", Self.activeSessionsKey).array ?? []).compactMap(\.string).sorted()
    }

    /// Asks the job's worker to stop it (seen within its next cancellation poll).
    public func requestCancel(jobID: String) async throws {
        try await redis.set(Self.cancelKey(jobID), "1", expiry: recordTTL)
    }

    /// Which of `jobIDs` were asked to stop; one round trip for all.
    public func cancelRequested(_ jobIDs: [String]) async throws -> Set<String> {
        guard !jobIDs.isEmpty else { return [] }
        let values = try await redis.send(RedisCommand(arguments: ["MGET"] + jobIDs.map(Self.cancelKey))).array ?? []
        return Set(zip(jobIDs, values).compactMap { $1.isNull ? nil : $0 })
    }
}

/// The Lua scripts of `GenerationState`.
enum GenerationScripts {
    /// KEYS: lock, job, active set. ARGV: jobId, lock ttl, sessionId, userId, modelId, startEventId, now.
    static let begin = RedisScript(
        """
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) == false then return 0 end
        redis.call('HSET', KEYS[2], 'status', 'queued', 'sessionId', ARGV[3], 'userId', ARGV[4], 'modelId', ARGV[5],
          'startEventId', ARGV[6], 'attempt', '0', 'createdAt', ARGV[7])
        redis.call('SADD', KEYS[3], ARGV[3])
        return 1
        """
    )

    /// KEYS: job, lock, active set. ARGV: attempt, jobId, lock ttl, sessionId.
    static let running = RedisScript(
        """
        redis.call('HSET', KEYS[1], 'status', 'running', 'attempt', ARGV[1])
        local holder = redis.call('GET', KEYS[2])
        if holder == false or holder == ARGV[2] then
          redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
          redis.call('SADD', KEYS[3], ARGV[4])
        end
        return 1
        """
    )

    /// KEYS: lock. ARGV: jobId, lock ttl.
    static let renew = RedisScript(
        """
        local holder = redis.call('GET', KEYS[1])
        if holder == false or holder == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
        return 1
        """
    )

    /// KEYS: lock, job, active set, cancel flag. ARGV: jobId, status, result, error, record ttl, sessionId.
    static let finish = RedisScript(
        """
        redis.call('HSET', KEYS[2], 'status', ARGV[2], 'result', ARGV[3], 'error', ARGV[4])
        redis.call('PEXPIRE', KEYS[2], ARGV[5])
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('DEL', KEYS[1])
          redis.call('SREM', KEYS[3], ARGV[6])
        end
        redis.call('DEL', KEYS[4])
        return 1
        """
    )
}

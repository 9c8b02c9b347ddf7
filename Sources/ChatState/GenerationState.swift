import ChatCore
import Foundation
import Queue

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
    /// The open jobs with their deadlines (`defaultOpenJobsKey`; tests use their own).
    public let openJobsKey: String
    /// The jobs whose turn waits for the database (`defaultPendingTurnsKey`; tests use their own).
    public let pendingTurnsKey: String
    /// The default of `pendingTurnsKey`.
    public static let defaultPendingTurnsKey = "chat:turns:pending"
    /// The most unfinished (queued or running) generations one user may have at once, across every session and
    /// replica; 0 for no cap. A user's burst waits its turn instead of filling the queue ahead of everyone else.
    public let maxJobsPerUser: Int

    /// State over `redis`.
    public init(
        redis: RedisClient, events: SessionEventsConfiguration = SessionEventsConfiguration(), cache: SessionCache? = nil,
        lockTTL: Duration = .seconds(600), recordTTL: Duration = .seconds(86_400), enqueueGrace: Duration = .seconds(30),
        queueTimeout: Duration = .seconds(120), lease: Duration = .seconds(60), settlementsKey: String = GenerationState.pendingSettlementsKey,
        openJobsKey: String = GenerationState.defaultOpenJobsKey, pendingTurnsKey: String = GenerationState.defaultPendingTurnsKey,
        maxJobsPerUser: Int = 0
    ) {
        self.maxJobsPerUser = maxJobsPerUser
        self.settlementsKey = settlementsKey
        self.openJobsKey = openJobsKey
        self.pendingTurnsKey = pendingTurnsKey
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
    /// The user's unfinished jobs (a sorted set of job ids, scored by when they stop counting at the latest).
    static func userJobsKey(_ userID: String) -> String { "chat:user:{\(userID)}:jobs" }
    /// The longest a job counts among its user's unfinished jobs after it left the queue (one that ran longer
    /// without ending is not held against its user).
    static let longestJob: Duration = .seconds(3_600)
    static func cancelKey(_ jobID: String) -> String { cancelKeyPrefix + jobID + cancelKeySuffix }
    static let cancelKeyPrefix = "chat:job:{"
    static let cancelKeySuffix = "}:cancel"
    static let activeSessionsKey = "chat:sessions:active"
    /// Every job not ended yet, scored by its deadline (milliseconds since 1970): the default of `openJobsKey`.
    public static let defaultOpenJobsKey = "chat:jobs:open"
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
    /// the session's messages show it before the worker stores it. With `streamSlot`, the same call takes the
    /// user's reply-stream slot (`.tooManyStreams` when the user holds the cap), so a stream's start costs one
    /// round trip to Redis rather than two.
    public func begin(
        jobID: String, sessionID: String, userID: String, requestedModel: String?, defaultModel: String, message: String, messageID: String,
        reservationID: String = "", createdAt: Date = Date(), streamSlot: UserSlots.Claim? = nil
    ) async throws -> BeginOutcome {
        let now = String(Int64((createdAt.timeIntervalSince1970 * 1000).rounded(.down)))
        var keys = [
            SessionCache.metaKey(sessionID), Self.lockKey(sessionID), Self.jobKey(jobID), Self.activeSessionsKey, SessionEvents.key(sessionID: sessionID),
            SessionCache.historyKey(sessionID), openJobsKey, Self.userJobsKey(userID),
        ]
        var arguments = [
            jobID, String(lockTTL.milliseconds), sessionID, userID, requestedModel ?? "", defaultModel, now, String(cache.ttl.milliseconds),
            message, messageID, String(recordTTL.milliseconds), reservationID, String(enqueueGrace.milliseconds),
            String(maxJobsPerUser), String((queueTimeout + Self.longestJob).milliseconds),
        ]
        if let streamSlot {
            keys.append(streamSlot.key)
            arguments += [streamSlot.id, String(streamSlot.cap), String(streamSlot.lease.milliseconds)]
        }
        let reply = try await redis.evaluate(GenerationScripts.begin, keys: keys, arguments: arguments)
        let values = reply.array ?? []
        switch values.first?.string {
        case "ok":
            guard values.count == 6, let start = values[1].string, let model = values[2].string else {
                throw RedisClientError(.unexpectedReply, "begin returned \(reply)")
            }
            let record = JobRecord(jobID: jobID, sessionID: sessionID, userID: userID, modelID: model, status: .queued, startEventID: start)
            let system = values[5].string ?? ""
            return .started(
                record,
                SessionSummary(modelID: model, messageCount: values[3].int ?? 0, contentBytes: values[4].int ?? 0, systemPrompt: system.isEmpty ? nil : system)
            )
        case "busy": return .busy
        case "toomany": return .tooManyJobs
        case "streams": return .tooManyStreams
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
                SessionCache.historyKey(sessionID), SessionEvents.key(sessionID: sessionID), Self.cancelKey(jobID), openJobsKey,
                SessionEvents.readersKey(sessionID: sessionID),
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
            return .committed(try JobOutcome(json: json))
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
                SessionCache.metaKey(sessionID), SessionCache.historyKey(sessionID), openJobsKey, pendingTurnsKey,
                SessionEvents.readersKey(sessionID: sessionID),
            ],
            arguments: [
                jobID, ending.status.rawValue, ending.event.type.rawValue, body, String(recordTTL.milliseconds), sessionID,
                String(events.maxLength), String(events.idleExpiry.milliseconds), String(ending.storedMessages), String(ending.storedBytes),
                String(cache.maxHistoryBytes), String(cache.ttl.milliseconds), failed ? "1" : "0", String(attempt), ending.pendingTurn?.rawValue ?? "",
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
        let reply = try await redis.evaluate(GenerationScripts.commit, keys: [Self.jobKey(jobID)], arguments: [String(outcome.attempt), try outcome.json()])
        switch reply.string {
        case "ok": return .committed
        case "committed": return .alreadyCommitted
        case "stale", "ended": return .refused
        default: throw RedisClientError(.unexpectedReply, "commit returned \(reply)")
        }
    }

    /// What `takeForEnd` found.
    public enum EndClaim: Sendable, Equatable {
        /// The job has no record.
        case gone
        /// It ended before.
        case ended
        /// A later attempt runs it.
        case stale
        /// The caller's attempt is now the job's current one; `outcome` is what an attempt committed, if any.
        case open(JobOutcome?)
    }

    /// Makes `attempt` the job's current one, to end it on the dead-letter path: from now on every effect of an
    /// earlier attempt is refused. Returns what an attempt committed.
    public func takeForEnd(jobID: String, attempt: Int) async throws -> EndClaim {
        let values = try await redis.evaluate(GenerationScripts.takeForEnd, keys: [Self.jobKey(jobID)], arguments: [String(attempt)]).array ?? []
        switch values.first?.string {
        case "gone": return .gone
        case "ended": return .ended
        case "stale": return .stale
        case "open":
            guard values.count == 2, let json = values[1].string else { return .open(nil) }
            return .open(try JobOutcome(json: json))
        default: throw RedisClientError(.unexpectedReply, "takeForEnd returned \(values)")
        }
    }

    /// The outcome an attempt of the job committed, if any.
    public func outcome(jobID: String) async throws -> JobOutcome? {
        guard let json = try await redis.send("HGET", Self.jobKey(jobID), "outcome").string else { return nil }
        return try JobOutcome(json: json)
    }

    /// Publishes one event of `attempt` of a running job; throws `JobFenced` (nothing published) when the
    /// attempt is no longer the job's current one or the job is not running.
    @discardableResult
    public func publish(jobID: String, sessionID: String, attempt: Int, event: ChatEvent) async throws -> String {
        let call = try publishCall(jobID: jobID, sessionID: sessionID, attempt: attempt, event: event)
        let reply = try await redis.evaluate(GenerationScripts.publish, keys: call.keys, arguments: call.arguments)
        guard let id = reply.string else { throw JobFenced(jobID: jobID, attempt: attempt) }
        return id
    }

    /// The keys and arguments of `GenerationScripts.publish` for one event of `attempt`.
    func publishCall(jobID: String, sessionID: String, attempt: Int, event: ChatEvent) throws -> (keys: [String], arguments: [String]) {
        (
            [Self.jobKey(jobID), SessionEvents.key(sessionID: sessionID), SessionEvents.readersKey(sessionID: sessionID)],
            [String(attempt), String(events.maxLength), jobID, event.type.rawValue, try event.encoded()]
        )
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
            keys: [Self.lockKey(sessionID), Self.jobKey(jobID), Self.activeSessionsKey, Self.cancelKey(jobID), openJobsKey],
            arguments: [jobID, String(recordTTL.milliseconds), sessionID]
        ).int == 1
    }

    /// Keeps a settlement for the workers' retry loop (`PendingSettlements`).
    public func parkSettlement(_ settlement: PendingSettlement) async throws {
        try await redis.send("HSET", settlementsKey, settlement.reservationID, try settlement.json())
    }

    /// Adds the job's entry to the jobs `stream`, once (a retry after a lost answer finds the first entry);
    /// nil when the job is no longer queued (abandoned, or ended by the sweeper): then it must not run.
    public func enqueue(jobID: String, stream: String, fields: [(String, String)]) async throws -> String? {
        try await redis.evaluate(
            GenerationScripts.enqueue, keys: [Self.jobKey(jobID), stream, openJobsKey],
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
            keys: [openJobsKey] + jobs.flatMap { [Self.lockKey($0.sessionID), Self.jobKey($0.jobID)] },
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

    /// Takes a session off the active list if no generation holds it (its job's lock lapsed before the job
    /// ended, or the job's record was lost): otherwise nothing would.
    public func forgetIfInactive(sessionID: String) async throws {
        try await redis.evaluate(GenerationScripts.forgetInactive, keys: [Self.lockKey(sessionID), Self.activeSessionsKey], arguments: [sessionID])
    }

    /// Asks the job running in the session now to stop, in one step: the job's flag (seen by a run that has not
    /// started) and one entry on the stream every worker reads (seen by a running one at once). Returns its id,
    /// or nil when none runs.
    public func cancelActive(sessionID: String) async throws -> String? {
        try await redis.evaluate(
            GenerationScripts.cancelActive, keys: [Self.lockKey(sessionID), Self.cancelsKey],
            arguments: [String(recordTTL.milliseconds), "10000", Self.cancelKeyPrefix, Self.cancelKeySuffix]
        ).string
    }

    /// The jobs whose turn waits for the database.
    public func pendingTurnJobs(limit: Int = 100) async throws -> [String] {
        (try await redis.send("SRANDMEMBER", pendingTurnsKey, String(limit)).array ?? []).compactMap(\.string)
    }

    /// The turn a job keeps for the database: the user's message as it is to be stored, and the reply (from
    /// the committed outcome) when the job finished with one; nil when nothing waits (or the record is gone).
    public func pendingTurn(jobID: String) async throws -> [NewMessage]? {
        let values = try await redis.send(
            "HMGET", Self.jobKey(jobID), "pendingTurn", "sessionId", "modelId", "message", "messageId", "createdAt", "outcome"
        ).array ?? []
        guard values.count == 7, let kind = values[0].string.flatMap(PendingTurnKind.init(rawValue:)), let sessionID = values[1].string,
            let text = values[3].string
        else { return nil }
        let outcome = values[6].string.flatMap { try? JobOutcome(json: $0) }
        // The model that answered (a fallback's, when one did), as the worker stores a finished turn.
        let modelID = outcome?.modelID ?? values[2].string
        let createdAt = values[5].int.map { Date(timeIntervalSince1970: Double($0) / 1000) }
        var turn = [
            NewMessage(sessionId: sessionID, jobId: jobID, role: .user, content: text, modelId: modelID, id: values[4].string, createdAt: createdAt)
        ]
        if kind == .reply, let outcome, outcome.status != .failed {
            turn.append(
                NewMessage(
                    sessionId: sessionID, jobId: jobID, role: .assistant, content: outcome.text, modelId: modelID,
                    status: outcome.status == .cancelled ? .cancelled : .complete, inputTokens: outcome.inputTokens, outputTokens: outcome.outputTokens,
                    id: outcome.replyMessageID, attempt: outcome.attempt
                )
            )
        }
        return turn
    }

    /// Records that a job's pending turn (of `messages` messages, `bytes` bytes of text) is stored now.
    public func turnStored(jobID: String, sessionID: String, messages: Int, bytes: Int) async throws {
        try await redis.evaluate(
            GenerationScripts.turnStored, keys: [Self.jobKey(jobID), pendingTurnsKey, SessionCache.metaKey(sessionID)],
            arguments: [jobID, String(messages), String(bytes)]
        )
    }
}

import ChatCore
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

/// What a session's cached summary says when a generation is started in it.
public struct SessionSummary: Sendable, Equatable {
    /// The model the generation uses: the requested one, else the session's, else the default.
    public var modelID: String
    /// Messages stored in the session.
    public var messageCount: Int
    /// UTF-8 bytes of their text.
    public var contentBytes: Int
    /// The session's system prompt, if it has one.
    public var systemPrompt: String? = nil
}

/// How an attempt to start a generation in a session came out.
public enum BeginOutcome: Sendable, Equatable {
    /// The session is claimed and the job recorded as queued.
    case started(JobRecord, SessionSummary)
    /// Another generation runs in the session.
    case busy
    /// The user already has as many unfinished generations as they may (`maxJobsPerUser`).
    case tooManyJobs
    /// The user already holds as many reply streams as the claimed slot's cap allows (nothing was changed).
    case tooManyStreams
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
    /// The model that answered when it is not the job's (a fallback), whose prices are charged; nil: the job's.
    public var modelID: String?

    /// Creates an outcome.
    public init(
        attempt: Int, status: JobStatus, text: String, stopReason: String, inputTokens: Int, outputTokens: Int, replyMessageID: String?,
        latencyMs: Int = 0, spans: GenerationSpans? = nil, failure: String? = nil, modelID: String? = nil
    ) {
        self.modelID = modelID
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

extension JobOutcome {
    /// The outcome as the job's record keeps it.
    func json() throws -> String {
        String(decoding: try JSONEncoder().encode(self), as: UTF8.self)
    }

    /// The outcome the job's record keeps as `json`.
    init(json: String) throws {
        self = try JSONDecoder().decode(JobOutcome.self, from: Data(json.utf8))
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
    /// What the database could not take yet (nil: the turn is stored): the record keeps the user's message and
    /// the committed reply, and `PendingTurns` stores them later.
    public var pendingTurn: PendingTurnKind?

    /// Creates an ending.
    public init(status: JobStatus, event: ChatEvent, turns: [HistoryTurn] = [], storedMessages: Int = 0, storedBytes: Int = 0) {
        self.status = status
        self.event = event
        self.turns = turns
        self.storedMessages = storedMessages
        self.storedBytes = storedBytes
    }
}

/// What of a job's turn waits for the database.
public enum PendingTurnKind: String, Sendable {
    /// The user's message alone (the job failed).
    case user
    /// The user's message and the committed reply.
    case reply
}

import ChatCore
import NIOCore
import Queue

/// One event of a session's stream, as relayed to clients.
public struct SessionEvent: Sendable, Equatable {
    /// The Redis entry id; clients resume after it with `Last-Event-ID`.
    public var id: String
    /// The job the event belongs to.
    public var jobID: String
    /// `model`, `chunk`, `complete`, `error`, `reset`, ...
    public var type: String
    /// The event's JSON body.
    public var data: String

    /// The pseudo-event an `EventHub` subscription yields after a quiet heartbeat interval (no id, type `heartbeat`).
    public static let heartbeat = SessionEvent(id: "", jobID: "", type: "heartbeat", data: "")

    /// Whether this is the heartbeat pseudo-event.
    public var isHeartbeat: Bool { id.isEmpty && type == "heartbeat" }

    /// Creates an event value.
    public init(id: String, jobID: String, type: String, data: String) {
        self.id = id
        self.jobID = jobID
        self.type = type
        self.data = data
    }
}

/// Caps of the per-session event streams.
public struct SessionEventsConfiguration: Sendable {
    /// Approximate number of entries a session's stream keeps (`MAXLEN ~`).
    public var maxLength: Int
    /// A stream not appended to for this long expires.
    public var idleExpiry: Duration

    /// Defaults: 5,000 entries, one day idle.
    public init(maxLength: Int = 5_000, idleExpiry: Duration = .seconds(86_400)) {
        self.maxLength = maxLength
        self.idleExpiry = idleExpiry
    }
}

/// The stream of every event of every job of one session, `chat:events:{sessionId}`: appended to by workers,
/// read (through each chat-api process's `EventHub`) for the requester and for observers, from any entry id onwards.
public final class SessionEvents: Sendable {
    /// The caps in use.
    public let configuration: SessionEventsConfiguration
    let redis: RedisClient

    /// Event streams over `redis`.
    public init(redis: RedisClient, configuration: SessionEventsConfiguration = SessionEventsConfiguration()) {
        self.redis = redis
        self.configuration = configuration
    }

    /// The Redis key of a session's events; the braces keep a session on one Redis Cluster slot.
    public static func key(sessionID: String) -> String {
        "chat:events:{\(sessionID)}"
    }

    /// Appends an event (capped stream, idle expiry renewed) and returns its entry id.
    @discardableResult
    public func append(sessionID: String, jobID: String, type: String, data: String) async throws -> String {
        let key = Self.key(sessionID: sessionID)
        let replies = try await redis.pipelineChecked([
            RedisClient.xaddCommand(key, maxLength: configuration.maxLength, fields: [("jobId", jobID), ("type", type), ("data", data)]),
            RedisCommand("PEXPIRE", key, String(configuration.idleExpiry.milliseconds)),
        ])
        guard let id = replies[0].string else { throw RedisClientError(.unexpectedReply, "XADD returned \(replies[0])") }
        return id
    }

    /// Appends a typed event, its body encoded once. A chunk is one XADD: the run's `model` event already
    /// renewed the stream's expiry.
    @discardableResult
    public func append(sessionID: String, jobID: String, event: ChatEvent) async throws -> String {
        let data = try event.encoded()
        guard case .chunk = event else { return try await append(sessionID: sessionID, jobID: jobID, type: event.type.rawValue, data: data) }
        return try await redis.xadd(Self.key(sessionID: sessionID), maxLength: configuration.maxLength, fields: [("jobId", jobID), ("type", "chunk"), ("data", data)])
    }

    /// Publishes a job's chunks in order without waiting for each reply (one publisher per run).
    public func chunkPublisher(sessionID: String, jobID: String) -> ChunkPublisher {
        ChunkPublisher(events: self, key: Self.key(sessionID: sessionID), jobID: jobID)
    }

    /// The events after `entryID` that are already stored, oldest first, without waiting.
    public func read(sessionID: String, after entryID: String, count: Int? = nil) async throws -> [SessionEvent] {
        try await redis.xrange(Self.key(sessionID: sessionID), start: "(" + entryID, count: count).map(Self.event)
    }

    /// The stored event with entry id `id`, or nil if it is not (or no longer) in the stream.
    public func event(sessionID: String, id: String) async throws -> SessionEvent? {
        try await redis.xrange(Self.key(sessionID: sessionID), start: id, end: id, count: 1).first.map(Self.event)
    }

    /// The id of the session's newest event, or `0-0` when it has none.
    public func lastEventID(sessionID: String) async throws -> String {
        let value = try await redis.send("XREVRANGE", Self.key(sessionID: sessionID), "+", "-", "COUNT", "1")
        return value.array?.first?.array?.first?.string ?? "0-0"
    }

    static func event(_ entry: StreamEntry) -> SessionEvent {
        SessionEvent(id: entry.id, jobID: entry.fields["jobId"] ?? "", type: entry.fields["type"] ?? "", data: entry.fields["data"] ?? "")
    }
}

/// Publishes one run's chunks pipelined: each XADD is written at once, in order, and its reply checked later
/// (at the latest by `flush()`, which the run calls before its last event), so a chunk never waits for the
/// previous one's round trip. Used by one task at a time.
public struct ChunkPublisher: Sendable {
    let events: SessionEvents
    let key: String
    let jobID: String
    private var outstanding: [EventLoopFuture<RedisValue>] = []

    init(events: SessionEvents, key: String, jobID: String) {
        self.events = events
        self.key = key
        self.jobID = jobID
    }

    /// Sends a chunk; with `wait`, returns once Redis stored it.
    public mutating func publish(_ chunk: ChunkEvent, wait: Bool = false) async throws {
        let command = RedisClient.xaddCommand(
            key, maxLength: events.configuration.maxLength, fields: [("jobId", jobID), ("type", "chunk"), ("data", try ChatEvent.chunk(chunk).encoded())]
        )
        let reply = try await events.redis.sendWithoutWaiting(command)
        if wait {
            _ = try await reply.get()
        } else {
            outstanding.append(reply)
            if outstanding.count >= 64 { try await flush() }
        }
    }

    /// Waits for every chunk sent so far; throws the first failure.
    public mutating func flush() async throws {
        let pending = outstanding
        outstanding = []
        for reply in pending { _ = try await reply.get() }
    }
}

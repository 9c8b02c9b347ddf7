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
    /// The attempt of the job that published it (0 when the entry does not say).
    public var attempt: Int

    /// The pseudo-event an `EventHub` subscription yields after a quiet heartbeat interval (no id, type `heartbeat`).
    public static let heartbeat = SessionEvent(id: "", jobID: "", type: "heartbeat", data: "")

    /// Whether this is the heartbeat pseudo-event.
    public var isHeartbeat: Bool { id.isEmpty && type == "heartbeat" }

    /// Creates an event value.
    public init(id: String, jobID: String, type: String, data: String, attempt: Int = 0) {
        self.id = id
        self.jobID = jobID
        self.type = type
        self.data = data
        self.attempt = attempt
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

    /// The sorted set of the chat-api processes reading a session live: each member is a process's inbox (see
    /// `EventHub`), scored by when its registration lapses unless renewed. Publishing an event copies it to each.
    public static func readersKey(sessionID: String) -> String {
        "chat:readers:{\(sessionID)}"
    }

    /// Entries an inbox keeps (`MAXLEN ~`): a process further behind than this reads the sessions' own streams.
    public static let inboxMaxLength = 10_000

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
        SessionEvent(
            id: entry.id, jobID: entry.fields["jobId"] ?? "", type: entry.fields["type"] ?? "", data: entry.fields["data"] ?? "",
            attempt: entry.fields["attempt"].flatMap { Int($0) } ?? 0
        )
    }
}

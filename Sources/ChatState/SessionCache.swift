import ChatCore
import Foundation
import Queue

/// One turn of a session's history as the cache keeps it: the job that produced it, who spoke, the text
/// (stored under one-letter keys: the list holds whole conversations).
public struct HistoryTurn: Codable, Sendable, Equatable {
    /// The job the turn belongs to.
    public var jobID: String
    /// Who spoke.
    public var role: MessageRole
    /// What was said.
    public var text: String

    enum CodingKeys: String, CodingKey {
        case jobID = "j"
        case role = "r"
        case text = "t"
    }

    /// Creates a turn.
    public init(jobID: String, role: MessageRole, text: String) {
        self.jobID = jobID
        self.role = role
        self.text = text
    }

    /// The turn as the JSON the cache stores.
    public func encoded() -> String {
        (try? JSONEncoder().encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// What a generation needs to start, kept in Redis so that neither chat-api nor chat-worker waits for
/// MongoDB before the first token: a session's owner, model, system prompt and counts (hash `chat:session:{id}`), and the
/// history the model sees (list `chat:session:{id}:history`, capped at what the largest context window can
/// use). Written through when a session is created or deleted and when a job ends; a miss is filled from
/// MongoDB by whoever meets it. A deleted session leaves a tombstone, so a late fill cannot bring it back.
public final class SessionCache: Sendable {
    let redis: RedisClient
    /// How long an unused entry is kept.
    public let ttl: Duration
    /// The most history text kept per session, in UTF-8 bytes of its stored turns.
    public let maxHistoryBytes: Int

    /// The cache over `redis`; by default entries live a day unused and the history keeps four bytes per
    /// token of the largest context window in the catalog.
    public init(redis: RedisClient, ttl: Duration = .seconds(86_400), maxHistoryBytes: Int = SessionCache.defaultMaxHistoryBytes) {
        self.redis = redis
        self.ttl = ttl
        self.maxHistoryBytes = maxHistoryBytes
    }

    /// Four bytes per token of the largest context window in the built-in catalog (the worker counts about three),
    /// at most 2 MiB a session: a million-token model sees the newest half million or so from the cache.
    public static let defaultMaxHistoryBytes = maxHistoryBytes(for: .builtIn)

    /// Four bytes per token of `catalog`'s largest context window, at most 2 MiB.
    public static func maxHistoryBytes(for catalog: ModelCatalog) -> Int {
        min(4 * catalog.largestContextWindow, 2 << 20)
    }

    static func metaKey(_ sessionID: String) -> String { "chat:session:{\(sessionID)}" }
    static func historyKey(_ sessionID: String) -> String { "chat:session:{\(sessionID)}:history" }

    /// Records a session just created: its owner and model, and an empty history that is known to be whole.
    public func created(_ session: ChatSession) async throws {
        let key = Self.metaKey(session.id)
        try await redis.pipelineChecked([
            RedisCommand(
                "HSET", key, "userId", session.userId, "modelId", session.modelId ?? "", "messageCount", String(session.messageCount),
                "contentBytes", String(session.contentBytes), "history", session.messageCount == 0 ? "1" : "0", "historyBytes", "0",
                "systemPrompt", session.systemPrompt ?? ""
            ),
            RedisCommand("PEXPIRE", key, String(ttl.milliseconds)),
        ])
    }

    /// Fills the summary of a stored session unless the cache already has it (or its tombstone).
    public func fill(_ session: ChatSession) async throws {
        try await redis.evaluate(
            SessionCacheScripts.fill, keys: [Self.metaKey(session.id)],
            arguments: [
                session.userId, session.modelId ?? "", String(session.messageCount), String(session.contentBytes), String(ttl.milliseconds),
                session.systemPrompt ?? "",
            ]
        )
    }

    /// Marks a session deleted (for a day) and drops its history.
    public func deleted(sessionID: String) async throws {
        let key = Self.metaKey(sessionID)
        try await redis.pipelineChecked([
            RedisCommand("DEL", Self.historyKey(sessionID)),
            RedisCommand("HSET", key, "deleted", "1", "history", "0"),
            RedisCommand("PEXPIRE", key, String(ttl.milliseconds)),
        ])
    }

    /// Fills the history from the stored messages (only complete ones: what the model may see) unless it is
    /// already whole or the session is gone from the cache; also sets the counts from them.
    public func fillHistory(sessionID: String, messages: [ChatMessage]) async throws {
        let turns = messages.filter { $0.status == .complete }.map { HistoryTurn(jobID: $0.jobId, role: $0.role, text: $0.content).encoded() }
        var kept: [String] = []
        var bytes = 0
        for turn in turns.reversed() {
            guard bytes + turn.utf8.count <= maxHistoryBytes else { break }
            bytes += turn.utf8.count
            kept.append(turn)
        }
        let contentBytes = messages.reduce(0) { $0 + $1.content.utf8.count }
        try await redis.evaluate(
            SessionCacheScripts.fillHistory, keys: [Self.metaKey(sessionID), Self.historyKey(sessionID)],
            arguments: [String(ttl.milliseconds), String(bytes), String(messages.count), String(contentBytes)] + kept.reversed()
        )
    }

    /// The history as kept, oldest first, or nil when it is not known whole (for inspection and tests; a run
    /// gets it from its start script).
    public func history(sessionID: String) async throws -> [HistoryTurn]? {
        let replies = try await redis.pipelineChecked([
            RedisCommand("HGET", Self.metaKey(sessionID), "history"),
            RedisCommand("LRANGE", Self.historyKey(sessionID), "0", "-1"),
        ])
        guard replies[0].string == "1" else { return nil }
        return Self.turns(replies[1])
    }

    /// The turns of an `LRANGE` reply, in order; an item that is not one turn is skipped. The items are read in
    /// one decoder pass, as one JSON array (a decoder's set-up costs more than a turn, and every job reads its
    /// session's whole history); only a list holding an unreadable item is read item by item.
    static func turns(_ value: RedisValue) -> [HistoryTurn] {
        let items = (value.array ?? []).compactMap { item -> [UInt8]? in
            guard case .bulkString(let bytes) = item else { return nil }
            return bytes
        }
        guard !items.isEmpty else { return [] }
        let decoder = JSONDecoder()
        var array = Data(capacity: items.reduce(2) { $0 + $1.count + 1 })
        array.append(UInt8(ascii: "["))
        for (index, item) in items.enumerated() {
            if index > 0 { array.append(UInt8(ascii: ",")) }
            array.append(contentsOf: item)
        }
        array.append(UInt8(ascii: "]"))
        // The count is checked too: an item holding two objects would pass as two turns in the array.
        if let all = try? decoder.decode([HistoryTurn].self, from: array), all.count == items.count { return all }
        return items.compactMap { try? decoder.decode(HistoryTurn.self, from: Data($0)) }
    }
}

/// The Lua scripts of `SessionCache`.
enum SessionCacheScripts {
    /// KEYS: meta. ARGV: userId, modelId, messageCount, contentBytes, ttl, systemPrompt. An entry written before
    /// sessions had system prompts (by an older process) only gains the field.
    static let fill = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 1 then
          if redis.call('HEXISTS', KEYS[1], 'systemPrompt') == 0 and redis.call('HGET', KEYS[1], 'deleted') ~= '1' then
            redis.call('HSET', KEYS[1], 'systemPrompt', ARGV[6] or '')
          end
          return 0
        end
        redis.call('HSET', KEYS[1], 'userId', ARGV[1], 'modelId', ARGV[2], 'messageCount', ARGV[3], 'contentBytes', ARGV[4],
          'history', '0', 'historyBytes', '0', 'systemPrompt', ARGV[6] or '')
        redis.call('PEXPIRE', KEYS[1], ARGV[5])
        return 1
        """
    )

    /// KEYS: meta, history. ARGV: ttl, bytes, messageCount, contentBytes, turns...
    static let fillHistory = RedisScript(
        """
        local meta = redis.call('HMGET', KEYS[1], 'userId', 'deleted', 'history')
        if meta[1] == false or meta[2] == '1' or meta[3] == '1' then return 0 end
        redis.call('DEL', KEYS[2])
        for i = 5, #ARGV, 1000 do
          redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
        end
        redis.call('HSET', KEYS[1], 'history', '1', 'historyBytes', ARGV[2], 'messageCount', ARGV[3], 'contentBytes', ARGV[4])
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        if #ARGV >= 5 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
        return 1
        """
    )
}

extension SessionCache {
    /// Whether `userID` owns the session, from the cache (filled from `store` on a miss).
    public func owns(userID: String, sessionID: String, store: any SessionStore) async throws -> Bool {
        try await owner(sessionID: sessionID, store: store) == userID
    }

    /// The session's owner, from the cache (filled from `store` on a miss); nil if it does not exist.
    public func owner(sessionID: String, store: any SessionStore) async throws -> String? {
        guard SessionID.isValid(sessionID) else { return nil }
        let values = try await redis.send("HMGET", Self.metaKey(sessionID), "userId", "deleted").array ?? []
        if values.count == 2, values[1].string == "1" { return nil }
        if values.count == 2, let owner = values[0].string { return owner }
        guard let session = try await store.session(id: sessionID) else { return nil }
        try await fill(session)
        return session.userId
    }
}

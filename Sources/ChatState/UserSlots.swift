import Foundation
import Queue

/// Caps on what one user holds open at once across every chat-api (open reply streams, observer streams), in
/// Redis: each holder is a member of the user's sorted set for its kind, scored by when its lease runs out.
/// A holder renews its lease while it lives and gives it back when it ends; a process that died leaves leases
/// that simply run out, so a crash never keeps a user locked out for longer than one lease.
public struct UserSlots: Sendable {
    /// What is counted.
    public enum Kind: String, Sendable {
        /// A requester's reply stream (SSE) or waiting `POST /messages`.
        case streams
        /// A supervisor's observer stream.
        case observers
    }

    let redis: RedisClient
    /// How long a slot is held without a renewal.
    public let lease: Duration
    /// The prefix of the sets' keys (tests use their own).
    public var keyPrefix = "chat:user:"

    /// Slots whose holders renew them at least every `lease / 3`.
    public init(redis: RedisClient, lease: Duration = .seconds(60)) {
        self.redis = redis
        self.lease = lease
    }

    func key(_ kind: Kind, userID: String) -> String { keyPrefix + "{\(userID)}:" + kind.rawValue }

    /// Takes a slot `id` of `kind` for `userID` if fewer than `cap` are held; false when the cap is reached.
    public func acquire(_ kind: Kind, userID: String, id: String, cap: Int) async throws -> Bool {
        try await redis.evaluate(
            Self.acquireScript, keys: [key(kind, userID: userID)], arguments: [id, String(cap), String(lease.milliseconds)]
        ).int == 1
    }

    /// Slot `id` of `kind` for `userID` under `cap`, for a script that takes it along with its own work
    /// (`GenerationState.begin`: one Redis call for both), the same slot `acquire` would take.
    public func claim(_ kind: Kind, userID: String, id: String, cap: Int) -> Claim {
        Claim(key: key(kind, userID: userID), id: id, cap: cap, lease: lease)
    }

    /// A slot for another script to take: its set, its id, the cap and the lease (`claim`).
    public struct Claim: Sendable {
        /// The user's sorted set of slots of one kind.
        public let key: String
        /// The slot's member in the set.
        public let id: String
        /// The most slots the set may hold.
        public let cap: Int
        /// How long the slot is held without a renewal.
        public let lease: Duration
    }

    /// Extends the lease of slot `id` (a slot that lapsed is taken again, whatever the cap: its holder is alive).
    public func renew(_ kind: Kind, userID: String, id: String) async throws {
        try await redis.evaluate(Self.renewScript, keys: [key(kind, userID: userID)], arguments: [id, String(lease.milliseconds)])
    }

    /// Gives slot `id` back.
    public func release(_ kind: Kind, userID: String, id: String) async throws {
        try await redis.send("ZREM", key(kind, userID: userID), id)
    }

    /// How many slots of `kind` `userID` holds now (lapsed ones not counted).
    public func held(_ kind: Kind, userID: String) async throws -> Int {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return try await redis.send("ZCOUNT", key(kind, userID: userID), String(now), "+inf").int ?? 0
    }

    /// KEYS: the set. ARGV: id, cap, lease ms. Drops lapsed slots, then adds `id` unless `cap` are held.
    static let acquireScript = RedisScript(
        """
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        return 1
        """
    )

    /// KEYS: the set. ARGV: id, lease ms.
    static let renewScript = RedisScript(
        """
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return 1
        """
    )
}

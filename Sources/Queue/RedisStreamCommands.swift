/// One entry of a Redis stream: its id and its field-value pairs.
public struct StreamEntry: Sendable, Equatable {
    /// The entry id, `<milliseconds>-<sequence>`.
    public var id: String
    public var fields: [String: String]

    /// Creates an entry value.
    public init(id: String, fields: [String: String]) {
        self.id = id
        self.fields = fields
    }
}

/// One pending entry of a consumer group (XPENDING's extended form).
public struct PendingEntry: Sendable, Equatable {
    public var id: String
    /// The consumer that holds the entry.
    public var consumer: String
    /// Milliseconds since the entry was last delivered or claimed.
    public var idleMilliseconds: Int
    /// How many times the entry was delivered.
    public var deliveries: Int
}

/// Typed forms of the stream commands: XADD, XREAD, XREADGROUP, XACK, XAUTOCLAIM, XCLAIM, XPENDING, XGROUP, XDEL, XTRIM.
extension RedisClient {
    /// XADD with an optional approximate cap (`MAXLEN ~ n`); returns the new entry's id.
    @discardableResult
    public func xadd(_ key: String, maxLength: Int? = nil, fields: [(String, String)]) async throws -> String {
        let command = Self.xaddCommand(key, maxLength: maxLength, fields: fields)
        let value = try await send(command)
        guard let id = value.string else { throw unexpected("XADD", value) }
        return id
    }

    /// The XADD command itself, for pipelines.
    public static func xaddCommand(_ key: String, maxLength: Int? = nil, fields: [(String, String)]) -> RedisCommand {
        var arguments = ["XADD", key]
        if let maxLength { arguments += ["MAXLEN", "~", String(maxLength)] }
        arguments.append("*")
        for (field, value) in fields { arguments += [field, value] }
        return RedisCommand(arguments: arguments)
    }

    /// XREAD of one stream after `id`, blocking up to `block` when given; empty when nothing came.
    public func xread(_ key: String, after id: String, count: Int? = nil, block: Duration? = nil) async throws -> [StreamEntry] {
        var arguments = ["XREAD"]
        if let count { arguments += ["COUNT", String(count)] }
        if let block { arguments += ["BLOCK", String(block.milliseconds)] }
        arguments += ["STREAMS", key, id]
        return try Self.streamEntries(of: key, in: try await send(RedisCommand(arguments: arguments)))
    }

    /// XREAD of several streams, each after its own id, without waiting (for a pipeline; its reply through
    /// `streamsReply`).
    public static func xreadCommand(streams: [(key: String, after: String)], count: Int) -> RedisCommand {
        var arguments = ["XREAD", "COUNT", String(count), "STREAMS"]
        arguments.reserveCapacity(4 + streams.count * 2)
        arguments += streams.map(\.key)
        arguments += streams.map(\.after)
        return RedisCommand(arguments: arguments)
    }

    /// The entries of an `XREAD` reply over several streams (sent in a pipeline, say), by stream key.
    public static func streamsReply(_ value: RedisValue) throws -> [String: [StreamEntry]] {
        if value.isNull { return [:] }
        guard let replies = value.array else { throw RedisClientError(.unexpectedReply, "stream read returned \(value)") }
        var result: [String: [StreamEntry]] = [:]
        for stream in replies {
            guard let pair = stream.array, pair.count == 2, let key = pair[0].string else { continue }
            result[key] = try (pair[1].array ?? []).compactMap(Self.streamEntry)
        }
        return result
    }

    /// XREADGROUP for `consumer` of `group` (`>` = new entries), blocking up to `block` when given.
    public func xreadgroup(
        group: String, consumer: String, key: String, id: String = ">", count: Int? = nil, block: Duration? = nil
    ) async throws -> [StreamEntry] {
        var arguments = ["XREADGROUP", "GROUP", group, consumer]
        if let count { arguments += ["COUNT", String(count)] }
        if let block { arguments += ["BLOCK", String(block.milliseconds)] }
        arguments += ["STREAMS", key, id]
        return try Self.streamEntries(of: key, in: try await send(RedisCommand(arguments: arguments)))
    }

    /// XACK; returns how many entries were acknowledged.
    @discardableResult
    public func xack(_ key: String, group: String, ids: [String]) async throws -> Int {
        try await send(RedisCommand(arguments: ["XACK", key, group] + ids)).int ?? 0
    }

    /// XAUTOCLAIM: entries idle at least `minIdle` move to `consumer`. Returns the cursor to continue from
    /// (`0-0` when the scan is done), the claimed entries, and the ids of pending entries no longer in the stream.
    public func xautoclaim(
        _ key: String, group: String, consumer: String, minIdle: Duration, start: String = "0-0", count: Int = 100
    ) async throws -> (cursor: String, entries: [StreamEntry], deleted: [String]) {
        let value = try await send(
            RedisCommand(arguments: ["XAUTOCLAIM", key, group, consumer, String(minIdle.milliseconds), start, "COUNT", String(count)])
        )
        guard let parts = value.array, parts.count >= 2, let cursor = parts[0].string, let entries = parts[1].array else {
            throw unexpected("XAUTOCLAIM", value)
        }
        let deleted = parts.count > 2 ? (parts[2].array ?? []).compactMap(\.string) : []
        return (cursor, try entries.compactMap(Self.streamEntry), deleted)
    }

    /// XCLAIM of `ids` idle at least `minIdle`; with `justID` the delivery count is left alone. Returns the claimed ids.
    @discardableResult
    public func xclaim(
        _ key: String, group: String, consumer: String, minIdle: Duration, ids: [String], justID: Bool = false
    ) async throws -> [String] {
        var arguments = ["XCLAIM", key, group, consumer, String(minIdle.milliseconds)] + ids
        if justID { arguments.append("JUSTID") }
        let value = try await send(RedisCommand(arguments: arguments))
        guard let elements = value.array else { throw unexpected("XCLAIM", value) }
        return elements.compactMap { element in element.string ?? element.array?.first?.string }
    }

    /// XPENDING's extended form over `start`...`end`, optionally for one consumer.
    public func xpending(
        _ key: String, group: String, start: String = "-", end: String = "+", count: Int = 100, consumer: String? = nil
    ) async throws -> [PendingEntry] {
        var arguments = ["XPENDING", key, group, start, end, String(count)]
        if let consumer { arguments.append(consumer) }
        let value = try await send(RedisCommand(arguments: arguments))
        guard let rows = value.array else { throw unexpected("XPENDING", value) }
        return try rows.map { row in
            guard let fields = row.array, fields.count == 4, let id = fields[0].string, let consumer = fields[1].string,
                let idle = fields[2].int, let deliveries = fields[3].int
            else { throw unexpected("XPENDING", row) }
            return PendingEntry(id: id, consumer: consumer, idleMilliseconds: idle, deliveries: deliveries)
        }
    }

    /// XPENDING's summary form: how many entries the group has pending.
    public func xpendingCount(_ key: String, group: String) async throws -> Int {
        let value = try await send("XPENDING", key, group)
        guard let count = value.array?.first?.int else { throw unexpected("XPENDING", value) }
        return count
    }

    /// XGROUP CREATE ... MKSTREAM; returns false when the group already existed.
    @discardableResult
    public func xgroupCreate(_ key: String, group: String, startID: String = "0") async throws -> Bool {
        do {
            try await send("XGROUP", "CREATE", key, group, startID, "MKSTREAM")
            return true
        } catch let error as RedisServerError where error.prefix == "BUSYGROUP" {
            return false
        }
    }

    /// XDEL; returns how many entries were deleted.
    @discardableResult
    public func xdel(_ key: String, ids: [String]) async throws -> Int {
        try await send(RedisCommand(arguments: ["XDEL", key] + ids)).int ?? 0
    }

    /// XTRIM MAXLEN (approximate unless `exact`); returns how many entries were removed.
    @discardableResult
    public func xtrim(_ key: String, maxLength: Int, exact: Bool = false) async throws -> Int {
        try await send("XTRIM", key, "MAXLEN", exact ? "=" : "~", String(maxLength)).int ?? 0
    }

    /// XLEN.
    public func xlen(_ key: String) async throws -> Int {
        try await send("XLEN", key).int ?? 0
    }

    /// XRANGE from `start` to `end` (`(id` excludes id).
    public func xrange(_ key: String, start: String = "-", end: String = "+", count: Int? = nil) async throws -> [StreamEntry] {
        var arguments = ["XRANGE", key, start, end]
        if let count { arguments += ["COUNT", String(count)] }
        let value = try await send(RedisCommand(arguments: arguments))
        guard let entries = value.array else { throw unexpected("XRANGE", value) }
        return try entries.compactMap(Self.streamEntry)
    }

    /// The entries of `key` in an XREAD/XREADGROUP reply (`nil` reply = none).
    static func streamEntries(of key: String, in value: RedisValue) throws -> [StreamEntry] {
        if value.isNull { return [] }
        guard let streams = value.array else {
            throw RedisClientError(.unexpectedReply, "stream read returned \(value)")
        }
        for stream in streams {
            guard let pair = stream.array, pair.count == 2, pair[0].string == key else { continue }
            return try (pair[1].array ?? []).compactMap(streamEntry)
        }
        return []
    }

    /// One `[id, [field, value, ...]]` element; nil for an entry deleted while pending (`[id, nil]`).
    static func streamEntry(_ value: RedisValue) throws -> StreamEntry? {
        guard let pair = value.array, pair.count == 2, let id = pair[0].string else {
            if value.isNull { return nil }
            throw RedisClientError(.unexpectedReply, "stream entry has an unexpected shape: \(value)")
        }
        guard let fields = pair[1].array else { return nil }
        return StreamEntry(id: id, fields: try pairs(fields, command: "stream read"))
    }
}

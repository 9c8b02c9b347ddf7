/// Typed forms of the key-value commands the service uses.
extension RedisClient {
    /// PING; returns `PONG`.
    public func ping() async throws -> String {
        try await send("PING").string ?? ""
    }

    /// GET; nil when the key does not exist.
    public func get(_ key: String) async throws -> String? {
        try await send("GET", key).string
    }

    /// SET with optional NX (only if absent) and PX (expiry); returns whether the value was set.
    @discardableResult
    public func set(_ key: String, _ value: String, onlyIfAbsent: Bool = false, expiry: Duration? = nil) async throws -> Bool {
        var arguments = ["SET", key, value]
        if onlyIfAbsent { arguments.append("NX") }
        if let expiry { arguments += ["PX", String(expiry.milliseconds)] }
        return try await send(RedisCommand(arguments: arguments)) != .null
    }

    /// DEL; returns how many keys were removed.
    @discardableResult
    public func delete(_ keys: String...) async throws -> Int {
        try await send(RedisCommand(arguments: ["DEL"] + keys)).int ?? 0
    }

    /// EXPIRE (in milliseconds, PEXPIRE); returns whether the key exists.
    @discardableResult
    public func expire(_ key: String, after duration: Duration) async throws -> Bool {
        try await send("PEXPIRE", key, String(duration.milliseconds)).int == 1
    }

    /// HSET of several fields; returns how many fields were new.
    @discardableResult
    public func hset(_ key: String, _ fields: [(String, String)]) async throws -> Int {
        var arguments = ["HSET", key]
        for (field, value) in fields { arguments += [field, value] }
        return try await send(RedisCommand(arguments: arguments)).int ?? 0
    }

    /// HGETALL; an empty dictionary when the key does not exist.
    public func hgetall(_ key: String) async throws -> [String: String] {
        let value = try await send("HGETALL", key)
        guard let elements = value.array else { throw unexpected("HGETALL", value) }
        return try Self.pairs(elements, command: "HGETALL")
    }

    static func pairs(_ elements: [RedisValue], command: String) throws -> [String: String] {
        guard elements.count % 2 == 0 else {
            throw RedisClientError(.unexpectedReply, "\(command) returned an odd number of field elements")
        }
        var result: [String: String] = [:]
        result.reserveCapacity(elements.count / 2)
        var index = 0
        while index < elements.count {
            if let field = elements[index].string, let value = elements[index + 1].string { result[field] = value }
            index += 2
        }
        return result
    }

    func unexpected(_ command: String, _ value: RedisValue) -> RedisClientError {
        RedisClientError(.unexpectedReply, "\(command) returned an unexpected reply: \(value)")
    }
}

extension Duration {
    /// The duration in whole milliseconds (rounded down, at least 1 for a positive duration).
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        let value = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return value == 0 && self > .zero ? 1 : value
    }
}

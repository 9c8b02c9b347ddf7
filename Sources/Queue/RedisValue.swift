/// A reply from Redis, as RESP2 carries it.
public enum RedisValue: Sendable, Hashable {
    /// A status reply such as `OK`.
    case simpleString(String)
    /// An error reply; `RedisClient.send` turns it into a thrown `RedisServerError`.
    case error(String)
    case integer(Int)
    /// A binary-safe bulk string.
    case bulkString([UInt8])
    /// A nil bulk string or nil array.
    case null
    case array([RedisValue])

    /// The value as text, for status and bulk replies (bulk bytes decoded as UTF-8); nil otherwise.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The integer of an integer reply, or of a bulk string holding digits.
    public var int: Int? {
        switch self {
        case .integer(let value): value
        case .bulkString, .simpleString: string.flatMap { Int($0) }
        default: nil
        }
    }

    /// The elements of an array reply; nil for anything else (including `.null`).
    public var array: [RedisValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// Whether this is a nil reply.
    public var isNull: Bool { self == .null }
}

/// One command: its name and arguments, each sent binary-safe.
public struct RedisCommand: Sendable, Hashable {
    /// The words of the command, the name first.
    public var arguments: [String]

    /// A command from its words, e.g. `RedisCommand("SET", "key", "value")`.
    public init(_ arguments: String...) {
        self.arguments = arguments
    }

    /// A command from an array of words.
    public init(arguments: [String]) {
        self.arguments = arguments
    }

    /// Whether Redis may hold the reply back (a `BLOCK` read); such commands go to a connection of their own.
    public var isBlocking: Bool {
        guard let name = arguments.first?.uppercased() else { return false }
        switch name {
        case "XREAD", "XREADGROUP": return arguments.contains { $0.uppercased() == "BLOCK" }
        case "BLPOP", "BRPOP", "BLMOVE", "BZPOPMIN", "BZPOPMAX": return true
        default: return false
        }
    }
}

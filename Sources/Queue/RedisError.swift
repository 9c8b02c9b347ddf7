/// The client could not get an answer from Redis: the reason is in `code`, the details in `message`.
public struct RedisClientError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Why no answer came.
    public enum Code: String, Sendable {
        /// The connection could not be opened (refused, unreachable, or the connect timeout passed).
        case connectionFailed
        /// The connection dropped while the command was in flight; the next command reconnects.
        case connectionClosed
        /// No reply within the command timeout; the connection is closed and the next command reconnects.
        case timeout
        /// The bytes from the server were not valid RESP.
        case protocolError
        /// The reply had a shape the command does not produce.
        case unexpectedReply
        /// The client was shut down.
        case shutdown
    }

    public var code: Code
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "Redis \(code.rawValue): \(message)" }
}

/// Redis answered with an error reply (`-ERR ...`, `-NOSCRIPT ...`, `-BUSYGROUP ...`).
public struct RedisServerError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The whole error text as Redis sent it.
    public var message: String

    /// Creates an error from the reply text.
    public init(message: String) {
        self.message = message
    }

    /// The error's first word, such as `ERR`, `NOSCRIPT` or `BUSYGROUP`.
    public var prefix: Substring { message.prefix { $0 != " " } }

    public var description: String { "Redis error: \(message)" }
}

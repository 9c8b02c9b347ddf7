/// A failure with a stable code, safe to show to a client; the API maps `kind` to an HTTP status in one place.
public struct ChatError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, coarsely: decides the HTTP status.
    public enum Kind: String, Sendable {
        case badRequest
        case unauthorized
        case forbidden
        case notFound
        case conflict
        case paymentRequired
        case tooManyRequests
        case unavailable
        /// An upstream (the model) could not produce what was asked: 502.
        case badGateway
        case timeout
        case `internal`
    }

    public var kind: Kind
    /// A stable SNAKE_CASE code for clients.
    public var code: String
    /// A human sentence; never a driver message or a stack trace.
    public var message: String
    /// Seconds after which trying again may succeed, sent as `Retry-After` (429 and 503).
    public var retryAfter: Int?

    /// Creates an error.
    public init(_ kind: Kind, code: String, message: String, retryAfter: Int? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { "\(code): \(message)" }

    /// A dependency (Redis, MongoDB, accounting) did not answer.
    public static func unavailable(_ what: String, code: String) -> ChatError {
        ChatError(.unavailable, code: code, message: "\(what) is unavailable")
    }
}

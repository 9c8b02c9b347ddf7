@preconcurrency import CMongoc
import ChatCore

/// A libmongoc or libbson failure as the driver reported it; logged, never shown to a client.
package struct MongoDriverError: Error, CustomStringConvertible {
    /// The `bson_error_t` domain (`MONGOC_ERROR_STREAM`, `MONGOC_ERROR_SERVER`, ...); 0 for our own checks.
    package var domain: UInt32
    /// The driver's or the server's error code (11000 is a duplicate key).
    package var code: UInt32
    /// The driver's message: may name hosts and values, so it goes to the log only.
    package var message: String

    /// An error with these parts; domain 0 marks the store's own checks.
    package init(domain: UInt32, code: UInt32, message: String) {
        self.domain = domain
        self.code = code
        self.message = message
    }

    /// Copies what libmongoc wrote into `error`.
    init(_ error: bson_error_t) {
        domain = error.domain
        code = error.code
        // `message` is a char[504] that libbson always NUL-terminates; read up to the NUL, within the tuple.
        message = withUnsafeBytes(of: error.message) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// The domain, code and message, for the log.
    package var description: String { "mongoc error \(domain).\(code): \(message)" }

    /// The database could not be reached or is going away, as opposed to refusing this request.
    package var isUnavailable: Bool {
        if domain == MONGOC_ERROR_STREAM.rawValue || domain == MONGOC_ERROR_SERVER_SELECTION.rawValue { return true }
        // Server codes for a node that is shutting down, stepping down or not (yet) writable.
        let transientServerCodes: Set<UInt32> = [91, 189, 10107, 11600, 11602, 13435, 13436]
        return domain == MONGOC_ERROR_SERVER.rawValue && transientServerCodes.contains(code)
    }

    /// The request failed while being sent: it never reached the server (libmongoc's words for a write to a
    /// socket that failed, typically a pooled connection the server had closed).
    package var failedBeforeSending: Bool {
        domain == MONGOC_ERROR_STREAM.rawValue && message.hasPrefix("Failure during socket delivery")
    }

    /// Whether `retry` lets an operation that failed so run once more.
    package func allowsRetry(_ retry: MongoClientPool.Retry) -> Bool {
        switch retry {
        case .never: false
        case .ifNotSent: failedBeforeSending
        case .idempotent: domain == MONGOC_ERROR_STREAM.rawValue
        }
    }

    /// What a caller may see: a stable code and a fixed sentence, never the driver's words.
    package var chatError: ChatError {
        isUnavailable
            ? ChatError(.unavailable, code: "DATABASE_UNAVAILABLE", message: "The database is unavailable")
            : ChatError(.internal, code: "DATABASE_ERROR", message: "The database could not complete the request")
    }
}

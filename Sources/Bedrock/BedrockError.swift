/// A Bedrock call failed: `code` is the AWS exception name (`ThrottlingException`, `ValidationException`, ...)
/// or one of the client's own (`FirstByteTimeout`, `ChunkTimeout`, `ConnectionError`, `InvalidResponse`).
public struct BedrockError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String
    /// The HTTP status, for errors answered before a stream started.
    public var statusCode: Int?
    /// `x-amzn-RequestId` of the failed call, when there was one.
    public var requestID: String?

    /// Creates an error.
    public init(code: String, message: String, statusCode: Int? = nil, requestID: String? = nil) {
        self.code = code
        self.message = message
        self.statusCode = statusCode
        self.requestID = requestID
    }

    /// Whether trying again may succeed: throttling, a model not ready yet, 5xx, a connection that failed.
    public var isRetryable: Bool {
        switch code {
        case "ThrottlingException", "ModelNotReadyException", "ServiceUnavailableException", "InternalServerException", "ConnectionError":
            return true
        default:
            return (statusCode ?? 0) >= 500
        }
    }

    public var description: String {
        "\(code): \(message)" + (requestID.map { " (request \($0))" } ?? "")
    }

    /// The exception name for a status when the response named none.
    static func defaultCode(forStatus status: Int) -> String {
        switch status {
        case 400: "ValidationException"
        case 403: "AccessDeniedException"
        case 404: "ResourceNotFoundException"
        case 408: "ModelTimeoutException"
        case 424: "ModelErrorException"
        case 429: "ThrottlingException"
        case 503: "ServiceUnavailableException"
        default: status >= 500 ? "InternalServerException" : "UnknownError"
        }
    }

    /// `throttlingException` (an event-stream `:exception-type`) as `ThrottlingException`.
    static func exceptionName(_ eventType: String) -> String {
        guard let first = eventType.first else { return "UnknownError" }
        return first.uppercased() + eventType.dropFirst()
    }
}

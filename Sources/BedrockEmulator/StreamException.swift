/// The exception events Bedrock Runtime can send inside a 200 response stream (`:exception-type`).
enum StreamException: String, Sendable, CaseIterable {
    case internalServerException
    case modelStreamErrorException
    case validationException
    case throttlingException
    case modelTimeoutException
    case serviceUnavailableException

    /// The original status a model stream error reports.
    private static let modelErrorStatus = 500
    private static let modelErrorMessage = "The model encountered an unexpected error while generating the response."

    /// The payload of the exception frame: `{"message": ...}`, plus the original status and message for a model
    /// stream error.
    var framePayload: JSONValue {
        var members: [(key: String, value: JSONValue)] = [(key: "message", value: .string(message))]
        if self == .modelStreamErrorException {
            members.append((key: "originalStatusCode", value: .integer(Self.modelErrorStatus)))
            members.append((key: "originalMessage", value: .string(Self.modelErrorMessage)))
        }
        return .object(members)
    }

    /// The HTTP error InvokeModel answers with where a stream would have carried this exception.
    func invokeError(modelARN: String) -> ServiceError {
        switch self {
        case .internalServerException:
            .internalServer
        case .modelStreamErrorException:
            ServiceError(
                code: "ModelErrorException", status: 424,
                message: "Received server error (\(Self.modelErrorStatus)) from model. \(Self.modelErrorMessage)",
                extraFields: [
                    (key: "originalStatusCode", value: .integer(Self.modelErrorStatus)),
                    (key: "resourceName", value: .string(modelARN)),
                ]
            )
        case .validationException:
            .validation(message)
        case .throttlingException:
            .throttling
        case .modelTimeoutException:
            ServiceError(code: "ModelTimeoutException", status: 408, message: message)
        case .serviceUnavailableException:
            ServiceError(code: "ServiceUnavailableException", status: 503, message: message)
        }
    }

    private var message: String {
        switch self {
        case .internalServerException: ServiceError.internalServer.message
        case .modelStreamErrorException: "Received error from model while streaming the response. Retry your request."
        case .validationException: "Input validation failed. Check your request parameters and retry the request."
        case .throttlingException: ServiceError.throttling.message
        case .modelTimeoutException: "Model has timed out in processing the request. Try your request again."
        case .serviceUnavailableException: "Bedrock is unable to process your request."
        }
    }
}

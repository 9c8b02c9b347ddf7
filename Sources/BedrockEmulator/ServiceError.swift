import Hummingbird
import SigV4

/// An error Bedrock Runtime answers with before any body byte: an exception name, its HTTP status and a message,
/// rendered as AWS does (`x-amzn-ErrorType` header, JSON body with `message`).
struct ServiceError: Error, Sendable {
    /// The exception name, e.g. `ThrottlingException`; the part of `x-amzn-ErrorType` before `:`.
    var code: String
    /// The HTTP status AWS uses for this exception.
    var status: Int
    /// The human-readable `message` of the body.
    var message: String
    /// Members added to the body after `message` (ModelErrorException's `originalStatusCode`, ...).
    var extraFields: [(key: String, value: JSONValue)] = []

    /// The suffix AWS's REST-JSON services append to the exception name in `x-amzn-ErrorType`.
    static let errorTypeNamespace = "http://internal.amazon.com/coral/com.amazon.coral.service/"

    /// The JSON body: `{"message": ...}` plus any extra fields.
    var body: JSONValue {
        .object([(key: "message", value: .string(message))] + extraFields)
    }

    /// The complete HTTP answer; the request id is added by `RequestIDMiddleware`.
    var response: Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.amznErrorType] = "\(code):\(Self.errorTypeNamespace)"
        return Response(
            status: HTTPResponse.Status(code: status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(string: body.serialized))
        )
    }
}

extension ServiceError {
    /// A refused SigV4 signature: always 403, with the verifier's code and message.
    init(_ failure: SigV4VerificationFailure) {
        self.init(code: failure.code.rawValue, status: failure.httpStatus, message: failure.message)
    }

    /// A request whose credentials name no known key or carry an unknown session token.
    static let invalidSecurityToken = ServiceError(
        code: "UnrecognizedClientException", status: 403, message: "The security token included in the request is invalid."
    )

    /// A model id the emulator does not serve.
    static let resourceNotFound = ServiceError(
        code: "ResourceNotFoundException", status: 404, message: "The requested resource could not be found."
    )

    /// A path or method Bedrock Runtime has no operation for.
    static let unknownOperation = ServiceError(code: "UnknownOperationException", status: 404, message: "Unknown operation")

    /// A body the model's schema refuses; `detail` is the schema violation, e.g. `#: required key [max_tokens] not found`.
    static func malformedInput(_ detail: String) -> ServiceError {
        validation("Malformed input request: \(detail), please reformat your input and try again.")
    }

    /// A ValidationException with exactly this message.
    static func validation(_ message: String) -> ServiceError {
        ServiceError(code: "ValidationException", status: 400, message: message)
    }

    /// The answer to a throttled request.
    static let throttling = ServiceError(
        code: "ThrottlingException", status: 429, message: "Too many requests, please wait before trying again."
    )

    /// The answer of an instance that failed unexpectedly.
    static let internalServer = ServiceError(
        code: "InternalServerException", status: 500,
        message: "The system encountered an unexpected error during processing. Try your request again."
    )

    /// The answer while a model is not yet deployed.
    static let modelNotReady = ServiceError(
        code: "ModelNotReadyException", status: 429,
        message: "The model is not ready to serve inference requests. Wait and try your request again."
    )
}

// `HTTPField` itself is not re-exported by Hummingbird, and HTTPTypes is not a dependency of this target.
extension HTTPFields.Element.Name {
    /// `x-amzn-ErrorType`: the exception name and its namespace.
    static let amznErrorType = HTTPFields.Element.Name("x-amzn-ErrorType")!
    /// `x-amzn-RequestId`: the id AWS gives every answer.
    static let amznRequestID = HTTPFields.Element.Name("x-amzn-RequestId")!
    /// `X-Amzn-Bedrock-Input-Token-Count` of an InvokeModel answer.
    static let bedrockInputTokenCount = HTTPFields.Element.Name("X-Amzn-Bedrock-Input-Token-Count")!
    /// `X-Amzn-Bedrock-Output-Token-Count` of an InvokeModel answer.
    static let bedrockOutputTokenCount = HTTPFields.Element.Name("X-Amzn-Bedrock-Output-Token-Count")!
    /// `X-Amzn-Bedrock-Invocation-Latency` (milliseconds) of an InvokeModel answer.
    static let bedrockInvocationLatency = HTTPFields.Element.Name("X-Amzn-Bedrock-Invocation-Latency")!
    /// `X-Amzn-Bedrock-Content-Type`: the content type of the chunks inside a stream.
    static let bedrockContentType = HTTPFields.Element.Name("X-Amzn-Bedrock-Content-Type")!
    /// `X-Amz-Security-Token`: the session token of temporary credentials.
    static let amzSecurityToken = HTTPFields.Element.Name("X-Amz-Security-Token")!
}

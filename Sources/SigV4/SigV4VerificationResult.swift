/// The outcome of checking one request's SigV4 signature.
public enum SigV4VerificationResult: Sendable, Equatable {
    /// The signature is valid and was made with the secret of this access key.
    case verified(accessKeyID: String)
    /// The request must be refused with this AWS error.
    case rejected(SigV4VerificationFailure)

    /// The failure, or `nil` when the request verified.
    public var failure: SigV4VerificationFailure? {
        if case .rejected(let failure) = self { failure } else { nil }
    }
}

/// Why a signature was refused: the AWS error code and message an AWS service answers with, always status 403.
public struct SigV4VerificationFailure: Error, Sendable, Equatable {
    /// The AWS error codes of signature failures, spelled as AWS sends them in `x-amzn-ErrorType`.
    public enum Code: String, Sendable, Equatable {
        /// No `Authorization` header at all.
        case missingAuthenticationToken = "MissingAuthenticationTokenException"
        /// An `Authorization` header that cannot be parsed, or a request without its `X-Amz-Date`.
        case incompleteSignature = "IncompleteSignatureException"
        /// A signature that does not match, a wrong scope, or a signing time outside the allowed skew.
        case invalidSignature = "InvalidSignatureException"
        /// An access key id the service does not know.
        case unrecognizedClient = "UnrecognizedClientException"
    }

    /// Which failure this is.
    public let code: Code
    /// The message AWS would put in the body's `message`.
    public let message: String

    /// A failure from its code and message.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The HTTP status to answer with: 403 for every signature failure.
    public var httpStatus: Int { 403 }

    static func incomplete(_ message: String) -> Self { Self(code: .incompleteSignature, message: message) }
    static func invalid(_ message: String) -> Self { Self(code: .invalidSignature, message: message) }
}

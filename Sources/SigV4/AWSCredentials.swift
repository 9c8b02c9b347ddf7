import Foundation

/// A set of AWS credentials: an access key pair, and for temporary credentials a session token and expiry.
public struct AWSCredentials: Sendable, Equatable {
    /// The access key id, sent in the clear in the credential scope of every signature.
    public var accessKeyID: String
    /// The secret access key; it never leaves the process, it only keys the HMAC chain.
    public var secretAccessKey: String
    /// The session token of temporary credentials; when set, every signed request carries it as `X-Amz-Security-Token`.
    public var sessionToken: String?
    /// When temporary credentials stop working; `nil` for long-term keys.
    public var expiration: Date?

    /// Credentials from their parts; long-term keys need neither a session token nor an expiry.
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }
}

extension AWSCredentials: CustomStringConvertible {
    /// A description that names the access key but never shows the secret or the token.
    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>, sessionToken: \(sessionToken == nil ? "nil" : "<redacted>"))"
    }
}

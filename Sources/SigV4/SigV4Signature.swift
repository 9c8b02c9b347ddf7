/// The result of signing one request: the headers to add, and the intermediate values behind them.
public struct SigV4Signature: Sendable, Equatable {
    /// The `X-Amz-Date` value, `YYYYMMDDTHHMMSSZ`.
    public let amzDate: String
    /// The `X-Amz-Security-Token` value when the credentials are temporary; it is among the signed headers.
    public let securityToken: String?
    /// The `Authorization` header value.
    public let authorization: String
    /// The signature alone, lower-case hex.
    public let signature: String
    /// The canonical request that was signed.
    package let canonicalRequest: SigV4CanonicalRequest
    /// The string to sign that the signature is the HMAC of.
    package let stringToSign: String

    /// The headers to add to the request, replacing any of the same names.
    public var headers: [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [(name: "X-Amz-Date", value: amzDate)]
        if let securityToken {
            headers.append((name: "X-Amz-Security-Token", value: securityToken))
        }
        headers.append((name: "Authorization", value: authorization))
        return headers
    }
}

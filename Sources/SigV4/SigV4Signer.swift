import Crypto
import Foundation

/// Signs HTTP requests with AWS Signature Version 4 (header form) for one set of credentials, region and service.
///
/// The signer never reads the clock: every call takes the signing `date`.
public struct SigV4Signer: Sendable {
    /// The credentials whose secret signs and whose token, if any, rides along.
    public let credentials: AWSCredentials
    /// The region in the credential scope, e.g. `us-east-1`.
    public let region: String
    /// The signing name in the credential scope, e.g. `bedrock` for Bedrock Runtime.
    public let service: String

    /// The hex SHA-256 of an empty body.
    public static let emptyBodySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// Headers never signed: hop-by-hop headers and ones that proxies and HTTP clients rewrite.
    package static let unsignedHeaderNames: Set<String> = [
        "authorization", "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
    ]

    /// A signer for these credentials, scoped to `region` and `service`.
    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// Signs a request and returns the headers to add to it (`X-Amz-Date`, `X-Amz-Security-Token`, `Authorization`).
    ///
    /// `path` is the path exactly as it goes on the wire (percent-encoded, without the query); `query` holds the
    /// decoded query items; `headers` must include `Host` and may repeat a name. Any `X-Amz-Date` or
    /// `Authorization` among them is replaced, as is `X-Amz-Security-Token` when the credentials carry a token.
    public func sign(
        method: String,
        path: String,
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)],
        bodySHA256: String,
        date: Date
    ) -> SigV4Signature {
        let timestamp = SigV4Timestamp(date)
        let canonical = canonicalRequest(method: method, path: path, query: query, headers: headers, bodySHA256: bodySHA256, date: date)
        let stringToSign = stringToSign(canonical, date: date)
        let signature = signature(stringToSign: stringToSign, date: date)
        let authorization = SigV4Authorization(
            accessKeyID: credentials.accessKeyID,
            scope: scope(for: date),
            signedHeaders: canonical.signedHeaders,
            signature: signature
        )
        return SigV4Signature(
            amzDate: timestamp.amzDate,
            securityToken: credentials.sessionToken,
            authorization: authorization.headerValue,
            signature: signature,
            canonicalRequest: canonical,
            stringToSign: stringToSign
        )
    }

    /// Signs a request whose body is given as bytes; otherwise the same as ``sign(method:path:query:headers:bodySHA256:date:)``.
    public func sign(
        method: String,
        path: String,
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)],
        body: some DataProtocol,
        date: Date
    ) -> SigV4Signature {
        sign(method: method, path: path, query: query, headers: headers, bodySHA256: Self.sha256Hex(of: body), date: date)
    }

    /// The hex SHA-256 of a body, as the canonical request wants it.
    public static func sha256Hex(of body: some DataProtocol) -> String {
        SHA256.hash(data: body).hexEncoded
    }

    /// The credential scope of a signature made at `date`.
    package func scope(for date: Date) -> SigV4CredentialScope {
        SigV4CredentialScope(dateStamp: SigV4Timestamp(date).dateStamp, region: region, service: service)
    }

    /// The headers the signature covers: the given ones less the unsigned kinds, plus `X-Amz-Date` and the token.
    package func headersToSign(_ headers: [(name: String, value: String)], date: Date) -> [(name: String, value: String)] {
        let token = credentials.sessionToken
        var signed = headers.filter { header in
            let name = header.name.lowercased()
            if name == "x-amz-date" || Self.unsignedHeaderNames.contains(name) { return false }
            return !(token != nil && name == "x-amz-security-token")
        }
        signed.append((name: "X-Amz-Date", value: SigV4Timestamp(date).amzDate))
        if let token {
            signed.append((name: "X-Amz-Security-Token", value: token))
        }
        return signed
    }

    /// Step 1: the canonical request that ``sign(method:path:query:headers:bodySHA256:date:)`` signs.
    package func canonicalRequest(
        method: String,
        path: String,
        query: [(name: String, value: String)],
        headers: [(name: String, value: String)],
        bodySHA256: String,
        date: Date
    ) -> SigV4CanonicalRequest {
        SigV4CanonicalRequest(
            method: method, path: path, query: query, headers: headersToSign(headers, date: date), bodySHA256: bodySHA256
        )
    }

    /// Step 2: the string to sign, `AWS4-HMAC-SHA256`, the time, the scope and the canonical request's hash on four lines.
    package func stringToSign(_ canonicalRequest: SigV4CanonicalRequest, date: Date) -> String {
        [SigV4Authorization.algorithm, SigV4Timestamp(date).amzDate, scope(for: date).description, canonicalRequest.hashHex]
            .joined(separator: "\n")
    }

    /// Step 3: the signing key for the day of `date`, derived from the secret through the HMAC chain.
    package func signingKey(date: Date) -> SigV4SigningKey {
        SigV4SigningKey(secretAccessKey: credentials.secretAccessKey, scope: scope(for: date))
    }

    /// Step 4: the hex signature of a string to sign made at `date`.
    package func signature(stringToSign: String, date: Date) -> String {
        signingKey(date: date).signature(for: stringToSign)
    }
}

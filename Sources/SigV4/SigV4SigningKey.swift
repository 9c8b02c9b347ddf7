import Crypto

/// The credential scope `YYYYMMDD/region/service/aws4_request` that a signing key and a signature are bound to.
package struct SigV4CredentialScope: Sendable, Equatable, CustomStringConvertible {
    /// The last element of every SigV4 scope.
    package static let terminator = "aws4_request"

    /// The UTC day, `YYYYMMDD`.
    package let dateStamp: String
    /// The AWS region, e.g. `us-east-1`.
    package let region: String
    /// The signing name of the service, e.g. `bedrock`.
    package let service: String

    /// A scope from its parts.
    package init(dateStamp: String, region: String, service: String) {
        self.dateStamp = dateStamp
        self.region = region
        self.service = service
    }

    /// The scope as it appears in the string to sign and, after the access key id, in `Credential=`.
    package var description: String {
        "\(dateStamp)/\(region)/\(service)/\(Self.terminator)"
    }
}

/// The key that signs strings to sign for one secret and one scope: the end of the SigV4 HMAC chain.
package struct SigV4SigningKey: Sendable {
    /// The derived key.
    package let key: SymmetricKey

    /// Derives `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
    package init(secretAccessKey: String, scope: SigV4CredentialScope) {
        var key = SymmetricKey(data: Array(("AWS4" + secretAccessKey).utf8))
        for step in [scope.dateStamp, scope.region, scope.service, SigV4CredentialScope.terminator] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(step.utf8), using: key)))
        }
        self.key = key
    }

    /// The derived key in lower-case hex, for comparing with published examples.
    package var hexEncoded: String {
        key.withUnsafeBytes { Array($0) }.hexEncoded
    }

    /// The signature of a string to sign: lower-case hex of its HMAC-SHA256 under this key.
    package func signature(for stringToSign: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key).hexEncoded
    }
}

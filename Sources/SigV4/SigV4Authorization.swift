/// The `Authorization` header of a SigV4 request: who signed, for which scope, which headers, and the signature.
package struct SigV4Authorization: Sendable, Equatable {
    /// The only algorithm this library signs and verifies.
    package static let algorithm = "AWS4-HMAC-SHA256"

    /// The access key id named in `Credential=`.
    package let accessKeyID: String
    /// The scope named in `Credential=`, after the access key id.
    package let scope: SigV4CredentialScope
    /// The terminator the request gave (it should be `aws4_request`).
    package let terminator: String
    /// The `SignedHeaders=` list, lower-case names joined by `;`.
    package let signedHeaders: String
    /// The `Signature=` value, lower-case hex.
    package let signature: String

    /// An authorization from the signer's own values.
    package init(accessKeyID: String, scope: SigV4CredentialScope, signedHeaders: String, signature: String) {
        self.accessKeyID = accessKeyID
        self.scope = scope
        terminator = SigV4CredentialScope.terminator
        self.signedHeaders = signedHeaders
        self.signature = signature
    }

    /// The header value, in the exact form AWS's own SDKs send.
    package var headerValue: String {
        "\(Self.algorithm) Credential=\(accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
    }

    /// The names listed in `SignedHeaders=`.
    package var signedHeaderNames: [String] {
        signedHeaders.split(separator: ";").map(String.init)
    }

    /// Parses a received header value, failing with the `IncompleteSignatureException` AWS would answer with.
    package init(parsing value: String) throws(SigV4VerificationFailure) {
        let trimmed = SigV4CanonicalRequest.trimmedCollapsingWhiteSpace(value)
        let algorithm = trimmed.prefix { $0 != " " }
        guard algorithm == Self.algorithm else {
            throw .incomplete("Unsupported Authorization Type. Authorization=\(value)")
        }
        var parameters: [String: String] = [:]
        for part in trimmed.dropFirst(algorithm.count).split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else { continue }
            parameters[SigV4CanonicalRequest.trimmedCollapsingWhiteSpace(String(pair[0]))] =
                SigV4CanonicalRequest.trimmedCollapsingWhiteSpace(String(pair[1]))
        }
        let missing = ["Credential", "Signature", "SignedHeaders"].filter { (parameters[$0] ?? "").isEmpty }
        guard missing.isEmpty, let credential = parameters["Credential"], let signedHeaders = parameters["SignedHeaders"],
              let signature = parameters["Signature"] else {
            let requirements = missing.map { "Authorization header requires '\($0)' parameter." }
            throw .incomplete((requirements + ["Authorization=\(value)"]).joined(separator: " "))
        }
        let elements = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard elements.count == 5, elements.allSatisfy({ !$0.isEmpty }) else {
            throw .incomplete(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '\(credential)'"
            )
        }
        accessKeyID = elements[0]
        scope = SigV4CredentialScope(dateStamp: elements[1], region: elements[2], service: elements[3])
        terminator = elements[4]
        self.signedHeaders = signedHeaders
        self.signature = signature
    }
}

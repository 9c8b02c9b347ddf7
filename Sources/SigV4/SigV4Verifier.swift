import Foundation

/// Checks SigV4-signed requests the way an AWS service does, for the Bedrock emulator.
///
/// It recomputes the canonical request from the headers named in `SignedHeaders`, with the signer's own code.
public struct SigV4Verifier: Sendable {
    /// The region a credential scope must name (or one of `otherRegions`).
    public let region: String
    /// Further regions a credential scope may name.
    public let otherRegions: Set<String>
    /// The service signing name a credential scope must name.
    public let service: String
    /// How far `X-Amz-Date` may be from the verifier's clock, either way.
    public let allowedClockSkew: Duration
    private let secrets: [String: String]

    /// A verifier accepting these access keys (access key id → secret access key) for `region` and `service`.
    public init(
        credentials: [String: String], region: String, otherRegions: Set<String> = [], service: String, allowedClockSkew: Duration = .seconds(300)
    ) {
        secrets = credentials
        self.region = region
        self.otherRegions = otherRegions
        self.service = service
        self.allowedClockSkew = allowedClockSkew
    }

    /// Verifies one request as received; `path` is the path as it came on the wire and `query` the decoded items.
    public func verify(
        method: String,
        path: String,
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)],
        bodySHA256: String,
        now: Date
    ) -> SigV4VerificationResult {
        do {
            let accessKeyID = try check(method: method, path: path, query: query, headers: headers, bodySHA256: bodySHA256, now: now)
            return .verified(accessKeyID: accessKeyID)
        } catch {
            return .rejected(error)
        }
    }

    private func check(
        method: String,
        path: String,
        query: [(name: String, value: String)],
        headers: [(name: String, value: String)],
        bodySHA256: String,
        now: Date
    ) throws(SigV4VerificationFailure) -> String {
        guard let authorizationValue = Self.firstValue(of: "authorization", in: headers) else {
            throw SigV4VerificationFailure(code: .missingAuthenticationToken, message: "Missing Authentication Token")
        }
        let authorization = try SigV4Authorization(parsing: authorizationValue)
        try checkScope(authorization)
        let signedNames = Set(authorization.signedHeaderNames)
        guard signedNames.contains("host") || signedNames.contains(":authority") else {
            throw .incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
        }
        let timestamp = try signingTime(headers: headers, authorization: authorizationValue)
        guard timestamp.dateStamp == authorization.scope.dateStamp else {
            throw .invalid(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                    + "'\(authorization.scope.dateStamp)' != '\(timestamp.dateStamp)', from '\(timestamp.amzDate)'."
            )
        }
        try checkSkew(timestamp, now: now)
        guard let secret = secrets[authorization.accessKeyID] else {
            throw SigV4VerificationFailure(code: .unrecognizedClient, message: "The security token included in the request is invalid.")
        }

        let signedHeaders = headers.filter { signedNames.contains($0.name.lowercased()) }
        let canonical = SigV4CanonicalRequest(method: method, path: path, query: query, headers: signedHeaders, bodySHA256: bodySHA256)
        let signer = SigV4Signer(
            credentials: AWSCredentials(accessKeyID: authorization.accessKeyID, secretAccessKey: secret), region: authorization.scope.region,
            service: service
        )
        let stringToSign = signer.stringToSign(canonical, date: timestamp.date)
        let expected = signer.signature(stringToSign: stringToSign, date: timestamp.date)
        guard canonical.signedHeaders == authorization.signedHeaders, Self.constantTimeEqual(expected, authorization.signature) else {
            throw .invalid(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key "
                    + "and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request "
                    + "should have been\n'\(canonical)'\n\nThe String-to-Sign should have been\n'\(stringToSign)'\n"
            )
        }
        return authorization.accessKeyID
    }

    private func checkScope(_ authorization: SigV4Authorization) throws(SigV4VerificationFailure) {
        guard authorization.terminator == SigV4CredentialScope.terminator else {
            throw .invalid(
                "Credential should be scoped with a valid terminator: '\(SigV4CredentialScope.terminator)', not '\(authorization.terminator)'."
            )
        }
        guard authorization.scope.region == region || otherRegions.contains(authorization.scope.region) else {
            throw .invalid(
                "Credential should be scoped to a valid region, not '\(authorization.scope.region)'. Expected region '\(region)'."
            )
        }
        guard authorization.scope.service == service else {
            throw .invalid("Credential should be scoped to correct service: '\(service)'.")
        }
    }

    private func signingTime(headers: [(name: String, value: String)], authorization: String) throws(SigV4VerificationFailure) -> SigV4Timestamp {
        guard let value = Self.firstValue(of: "x-amz-date", in: headers) else {
            throw .incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=\(authorization)"
            )
        }
        guard let timestamp = SigV4Timestamp(amzDate: value.trimmingCharacters(in: .whitespaces)) else {
            throw .incomplete("Date must be in ISO-8601 'basic format'. Got '\(value)'. See http://en.wikipedia.org/wiki/ISO_8601")
        }
        return timestamp
    }

    private func checkSkew(_ timestamp: SigV4Timestamp, now: Date) throws(SigV4VerificationFailure) {
        let (seconds, attoseconds) = allowedClockSkew.components
        let skew = TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
        let skewText = seconds % 60 == 0 && attoseconds == 0 ? "\(seconds / 60) min." : "\(seconds) sec."
        let current = SigV4Timestamp(now).amzDate
        if timestamp.date < now.addingTimeInterval(-skew) {
            let earliest = SigV4Timestamp(now.addingTimeInterval(-skew)).amzDate
            throw .invalid("Signature expired: \(timestamp.amzDate) is now earlier than \(earliest) (\(current) - \(skewText))")
        }
        if timestamp.date > now.addingTimeInterval(skew) {
            let latest = SigV4Timestamp(now.addingTimeInterval(skew)).amzDate
            throw .invalid("Signature not yet current: \(timestamp.amzDate) is still later than \(latest) (\(current) + \(skewText))")
        }
    }

    private static func firstValue(of lowercasedName: String, in headers: [(name: String, value: String)]) -> String? {
        headers.first { $0.name.lowercased() == lowercasedName }?.value
    }

    /// Compares two signatures without stopping at the first difference, so timing reveals nothing about the right one.
    private static func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
        let left = Array(lhs.utf8)
        let right = Array(rhs.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices {
            difference |= left[index] ^ right[index]
        }
        return difference == 0
    }
}

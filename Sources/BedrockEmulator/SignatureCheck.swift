import Foundation
import Hummingbird
import SigV4

/// Decides whether a request is signed with the emulator's credentials, the way Bedrock Runtime does.
struct SignatureCheck: Sendable {
    private let verifier: SigV4Verifier
    private let sessionToken: String?

    /// A check accepting only the configured key pair, region and session token, for the `bedrock` signing name.
    init(configuration: EmulatorConfiguration) {
        verifier = SigV4Verifier(
            credentials: [configuration.accessKeyID: configuration.secretAccessKey],
            region: configuration.region,
            otherRegions: Set(configuration.otherRegions),
            service: "bedrock"
        )
        sessionToken = configuration.sessionToken
    }

    /// The 403 to answer with, or nil when the request is properly signed.
    ///
    /// The signature is checked over the path exactly as it came on the wire (`%3A` stays `%3A`, and is
    /// encoded again by the canonical form), the `Host` header (which swift-http-types keeps as the request's
    /// authority, not among its header fields), and the SHA-256 of the body as received.
    func failure(of request: Request, bodySHA256: String, now: Date = Date()) -> ServiceError? {
        var headers: [(name: String, value: String)] = []
        if let authority = request.head.authority {
            headers.append((name: "host", value: authority))
        }
        for field in request.headers {
            headers.append((name: field.name.canonicalName, value: field.value))
        }
        let result = verifier.verify(
            method: request.method.rawValue,
            path: request.uri.path,
            query: Self.queryItems(request.uri.query),
            headers: headers,
            bodySHA256: bodySHA256,
            now: now
        )
        if let failure = result.failure {
            return ServiceError(failure)
        }
        let token = request.headers[.amzSecurityToken]
        if token != sessionToken {
            return .invalidSecurityToken
        }
        return nil
    }

    /// The decoded name-value pairs of a raw query string, in order.
    static func queryItems(_ query: String?) -> [(name: String, value: String)] {
        guard let query, !query.isEmpty else { return [] }
        return query.split(separator: "&").map { part in
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(pair[0])
            let value = pair.count > 1 ? String(pair[1]) : ""
            return (name: name.removingPercentEncoding ?? name, value: value.removingPercentEncoding ?? value)
        }
    }
}

import ChatCore
import Foundation
import Hummingbird

/// Requires a valid HS256 access token in `Authorization: Bearer <token>` and puts the caller in the
/// context; every failure is the same 401 `Invalid authentication token`. The token is never logged. A token
/// sent again (chat-api passes the user's own with each reservation, chat-worker reuses the one it signs) is
/// checked in full once, then only against its expiry (`VerifiedTokenCache`).
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AccountingRequestContext
    let verifier: AccessTokenVerifier
    let verified: VerifiedTokenCache

    /// Authentication with `verifier`, remembering recently verified tokens.
    init(verifier: AccessTokenVerifier) {
        self.verifier = verifier
        verified = VerifiedTokenCache(leeway: verifier.leeway)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else { throw AccountingErrors.invalidToken }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
            let user = verified.user(
                for: parts[1].trimmingCharacters(in: .whitespaces), now: Int(Date().timeIntervalSince1970), verify: { verifier.verify($0) }
            )
        else { throw AccountingErrors.invalidToken }
        var context = context
        context.user = user
        context.logger[metadataKey: "userId"] = .string(user.id)
        return try await next(request, context)
    }
}

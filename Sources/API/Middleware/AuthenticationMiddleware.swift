import ChatCore
import Foundation
import Hummingbird

/// Requires a valid HS256 access token in `Authorization: Bearer <token>` (the scheme word in any case) and
/// puts the caller in the context. Every failure is the same 401; the token is never logged.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext
    let verifier: AccessTokenVerifier
    let verified: VerifiedTokenCache

    /// Authentication with `verifier`, remembering recently verified tokens.
    init(verifier: AccessTokenVerifier) {
        self.verifier = verifier
        self.verified = VerifiedTokenCache(leeway: verifier.leeway)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        guard let token = Self.bearerToken(of: request) ?? Self.queryToken(of: request),
            let user = verified.user(for: token, now: Int(Date().timeIntervalSince1970), verify: { verifier.verify($0) })
        else {
            throw ChatError(.unauthorized, code: "INVALID_TOKEN", message: "Invalid authentication token")
        }
        context.timing.record("auth", since: start)
        var context = context
        context.user = user
        context.token = token
        context.logger[metadataKey: "userId"] = .string(user.id)
        context.caller.withLockedValue { $0 = user.id }
        return try await LogContext.with(["userId": .string(user.id)]) { try await next(request, context) }
    }

    /// `access_token` from the query of a GET event stream (EventSource cannot send headers).
    static func queryToken(of request: Request) -> String? {
        guard request.method == .get, request.uri.path.hasSuffix("/stream") || request.uri.path.hasSuffix("/observe") else { return nil }
        return request.uri.queryParameters["access_token"].map(String.init)
    }

    /// The token of `Authorization: Bearer <token>` (scheme word in any case), or nil.
    static func bearerToken(of request: Request) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }
}

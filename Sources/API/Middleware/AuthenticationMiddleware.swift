import ChatCore
import Foundation
import Hummingbird

/// Requires a valid HS256 access token in `Authorization: Bearer <token>` (the scheme word in any case) and
/// puts the caller in the context. Every failure is the same 401; the token is never logged.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext
    let verifier: AccessTokenVerifier

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let user = Self.user(of: request, verifier: verifier) else {
            throw ChatError(.unauthorized, code: "INVALID_TOKEN", message: "Invalid authentication token")
        }
        var context = context
        context.user = user
        context.logger[metadataKey: "user"] = .string(user.id)
        return try await next(request, context)
    }

    /// The caller proven by the request's bearer token, or nil when there is none or it is not valid.
    static func user(of request: Request, verifier: AccessTokenVerifier) -> AuthenticatedUser? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return verifier.verify(parts[1].trimmingCharacters(in: .whitespaces))
    }
}

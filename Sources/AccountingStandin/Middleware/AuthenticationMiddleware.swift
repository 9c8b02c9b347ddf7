import ChatCore
import Foundation
import Hummingbird

/// Requires a valid HS256 access token in `Authorization: Bearer <token>` and puts the caller in the
/// context; every failure is the same 401 `Invalid authentication token`. The token is never logged.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AccountingRequestContext
    let verifier: AccessTokenVerifier

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else { throw AccountingErrors.invalidToken }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
            let user = verifier.verify(parts[1].trimmingCharacters(in: .whitespaces))
        else { throw AccountingErrors.invalidToken }
        var context = context
        context.user = user
        context.logger[metadataKey: "user"] = .string(user.id)
        return try await next(request, context)
    }
}

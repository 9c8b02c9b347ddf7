import ChatCore
import Hummingbird

/// The per-request state of chat-api: its request id and, after authentication, the caller.
struct ChatRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The id sent back as `X-Request-Id` and put in error bodies and logs.
    var requestID: String = ""
    /// The caller, set by `AuthenticationMiddleware`.
    var user: AuthenticatedUser?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// The caller; only routes behind `AuthenticationMiddleware` use it.
    func requireUser() throws -> AuthenticatedUser {
        guard let user else { throw ChatError(.unauthorized, code: "UNAUTHORIZED", message: "Invalid authentication token") }
        return user
    }
}

import ChatCore
import Hummingbird
import HummingbirdWebSocket
import NIOConcurrencyHelpers

/// The per-request state of chat-api: its request id and, after authentication, the caller.
struct ChatRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    /// The id sent back as `X-Request-Id` and put in error bodies and logs.
    var requestID: String = ""
    /// The request's trace (its `traceparent`, or one started here), set by `RequestIDMiddleware`.
    var trace: TraceContext?
    /// The caller, set by `AuthenticationMiddleware`.
    var user: AuthenticatedUser?
    /// The caller's bearer token, for calls made on their behalf (never logged).
    var token: String?

    /// The WebSocket handler of an upgraded request, set by the route that accepted the upgrade.
    let webSocket = WebSocketHandlerReference<ChatRequestContext>()

    /// The spans of this request, for `Server-Timing`.
    let timing = ServerTiming()
    /// When chat-api began the request (its head was read; the body's upload counts in), for the `server` span.
    let started = ContinuousClock.now
    /// Who made the request, once known, for its access log line (written after the inner middleware returned).
    let caller = NIOLockedValueBox<String?>(nil)

    /// The peer's IP address (the proxy's, behind one; `X-Forwarded-For` is not trusted).
    var clientIP: String?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientIP = source.channel.remoteAddress?.ipAddress
    }

    /// The caller; only routes behind `AuthenticationMiddleware` use it.
    func requireUser() throws -> AuthenticatedUser {
        guard let user else { throw ChatError(.unauthorized, code: "UNAUTHORIZED", message: "Invalid authentication token") }
        return user
    }

    /// The caller's bearer token; only routes behind `AuthenticationMiddleware` use it.
    func requireToken() throws -> String {
        guard let token else { throw ChatError(.unauthorized, code: "UNAUTHORIZED", message: "Invalid authentication token") }
        return token
    }
}

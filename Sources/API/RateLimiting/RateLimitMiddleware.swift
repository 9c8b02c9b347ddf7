import ChatCore
import HTTPTypes
import Hummingbird

/// Applies a rate-limit class to the requests it wraps: per client IP before authentication, per user
/// after it. Over the limit: 429 with `Retry-After`; every checked response carries `RateLimit-*` headers.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext
    let limiter: RateLimiter
    /// The class of a request; nil leaves it unlimited here. For per-IP checks use `.ip`.
    let classify: @Sendable (Request) -> RateLimitClass?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let kind = classify(request) else { return try await next(request, context) }
        let subject = kind == .ip ? (context.clientIP ?? "unknown") : (context.user?.id ?? context.clientIP ?? "unknown")
        let start = ContinuousClock.now
        let checked = await limiter.check(kind, subject: subject)
        context.timing.record("ratelimit", since: start)
        guard let decision = checked else { return try await next(request, context) }
        guard decision.allowed else {
            ChatMetrics.rateLimited(policy: kind.rawValue)
            var response = ErrorMiddleware.response(
                request, status: .tooManyRequests, code: "RATE_LIMITED", message: "Too many requests, please try again later", requestID: context.requestID
            )
            Self.addHeaders(decision, to: &response.headers)
            response.headers[.retryAfter] = String(decision.retryAfterSeconds)
            return response
        }
        var response = try await next(request, context)
        if kind != .ip { Self.addHeaders(decision, to: &response.headers) }
        return response
    }

    private static func addHeaders(_ decision: RateLimitDecision, to headers: inout HTTPFields) {
        headers[.rateLimitLimit] = String(decision.limit)
        headers[.rateLimitRemaining] = String(decision.remaining)
        headers[.rateLimitReset] = String(decision.resetSeconds)
    }

    /// Whether `path` is the OpenAI-compatible completions route (with or without a trailing slash).
    static func isCompletion(_ path: String) -> Bool {
        path == "/v1/chat/completions" || path == "/v1/chat/completions/"
    }

    /// The class of an authenticated chat request, by method and path; every request has one.
    static func chatClass(_ request: Request) -> RateLimitClass? {
        let path = request.uri.path
        if request.method == .post && (path == "/api/chat/sessions" || path == "/api/chat/sessions/") { return .sessionCreate }
        if path.hasSuffix("/observe") { return .observe }
        if (request.method == .post && path.hasSuffix("/messages")) || path.hasSuffix("/stream") || isCompletion(path) { return .generation }
        if request.method == .get || request.method == .head { return .read }
        return .write
    }
}

extension HTTPField.Name {
    static let rateLimitLimit = Self("RateLimit-Limit")!
    static let rateLimitRemaining = Self("RateLimit-Remaining")!
    static let rateLimitReset = Self("RateLimit-Reset")!
}

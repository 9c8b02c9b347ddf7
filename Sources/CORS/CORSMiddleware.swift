import ChatCore
import HTTPTypes
import Hummingbird

/// The origins whose pages may call the API from a browser (`CORS_ALLOWED_ORIGINS`): a comma-separated list of
/// origins (`https://app.example.com`), each optionally with any port (`http://localhost:*`), or `*` for any
/// origin (development only). Empty: no cross-origin page may call it.
public struct CORSPolicy: Sendable, Equatable {
    /// Origins allowed exactly (`scheme://host[:port]`, lowercased).
    public var exact: Set<String> = []
    /// Origins allowed on any port (`scheme://host`).
    public var anyPort: Set<String> = []
    /// Whether every origin is allowed.
    public var any = false

    /// Parses the setting; a malformed origin throws a `ConfigurationError` naming it.
    public init(parsing text: String) throws {
        for raw in text.split(separator: ",") {
            let entry = raw.trimmingCharacters(in: .whitespaces).lowercased()
            guard !entry.isEmpty else { continue }
            if entry == "*" {
                any = true
                continue
            }
            guard entry.hasPrefix("http://") || entry.hasPrefix("https://"), !entry.hasSuffix("/"),
                !entry.dropFirst(entry.hasPrefix("https://") ? 8 : 7).contains("/")
            else {
                throw ConfigurationError("CORS_ALLOWED_ORIGINS must list origins like https://app.example.com or http://localhost:* (got \(entry))")
            }
            if entry.hasSuffix(":*") { anyPort.insert(String(entry.dropLast(2))) } else { exact.insert(entry) }
        }
    }

    /// Whether a page of `origin` may call the API.
    public func allows(_ origin: String) -> Bool {
        if any { return true }
        let origin = origin.lowercased()
        if exact.contains(origin) { return true }
        guard !anyPort.isEmpty else { return false }
        // `scheme://host:port` without its port.
        let scheme = origin.hasPrefix("https://") ? 8 : 7
        let rest = origin.dropFirst(scheme)
        guard let colon = rest.lastIndex(of: ":"), rest[rest.index(after: colon)...].allSatisfy(\.isNumber) else {
            return anyPort.contains(origin)
        }
        return anyPort.contains(String(origin.prefix(scheme)) + rest[..<colon])
    }
}

/// Cross-origin requests from the pages of allowed origins: a preflight (`OPTIONS` with
/// `Access-Control-Request-Method`) is answered 204 for any path with the methods and request headers the API
/// takes; every other answer to an allowed origin names it in `Access-Control-Allow-Origin` and exposes the
/// request id, the rate-limit headers, `Retry-After` and `Server-Timing`. A request from any other origin is
/// served exactly as before, with no CORS header at all (so the browser keeps its answer from the page).
public struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let policy: CORSPolicy

    /// Middleware for `policy`.
    public init(policy: CORSPolicy) {
        self.policy = policy
    }

    /// The methods a page may use.
    public static var allowedMethods: String { "GET, POST, DELETE, OPTIONS" }
    /// The request headers a page may send.
    public static var allowedHeaders: String { "Authorization, Content-Type, Last-Event-ID, Prefer, X-Request-Id, traceparent" }
    /// The response headers a page may read.
    public static var exposedHeaders: String {
        "X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, Server-Timing"
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], policy.allows(origin) else {
            var response = try await next(request, context)
            // Answers differ by origin from here on: caches must keep them apart.
            if !policy.exact.isEmpty || !policy.anyPort.isEmpty || policy.any { response.headers[values: .vary].append("Origin") }
            return response
        }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            return Response(
                status: .noContent,
                headers: [
                    .accessControlAllowOrigin: origin, .vary: "Origin", .accessControlAllowMethods: Self.allowedMethods,
                    .accessControlAllowHeaders: Self.allowedHeaders, .accessControlMaxAge: "600",
                ]
            )
        }
        var response = try await next(request, context)
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlExposeHeaders] = Self.exposedHeaders
        response.headers[values: .vary].append("Origin")
        return response
    }
}

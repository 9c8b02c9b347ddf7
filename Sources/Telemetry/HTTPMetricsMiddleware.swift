import HTTPTypes
import Hummingbird
import Metrics

/// Counts every request by route template, method and status (`http_server_requests_total`) and times it to its
/// response head (`http_server_request_duration_seconds`: for a stream, the time to its first byte, not its
/// length); `http_server_active_requests` is the requests being handled now. The route is the template the router
/// matched (`/api/chat/sessions/{sessionId}`), `unmatched` for a path no route serves: never a raw path, so the
/// labels stay bounded whatever clients send.
public struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The middleware; add it to a router before every other middleware, so it sees the status they produce.
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let clock = ContinuousClock()
        let started = clock.now
        let method = request.method.rawValue
        let active = Meter(label: "http_server_active_requests", dimensions: [("method", method)])
        active.increment()
        defer { active.decrement() }
        do {
            let response = try await next(request, context)
            Self.record(route: context.endpointPath, method: method, status: response.status.code, duration: clock.now - started)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            Self.record(route: context.endpointPath, method: method, status: status, duration: clock.now - started)
            throw error
        }
    }

    private static func record(route: String?, method: String, status: Int, duration: Duration) {
        let route = route ?? "unmatched"
        Counter(label: "http_server_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))]).increment()
        let (seconds, attoseconds) = duration.components
        Timer(label: "http_server_request_duration_seconds", dimensions: [("route", route), ("method", method)], preferredDisplayUnit: .seconds)
            .recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

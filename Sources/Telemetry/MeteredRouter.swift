import HTTPTypes
import Hummingbird
import Metrics

/// A router with every request counted by route template, method and status (`http_server_requests_total`),
/// timed to its response head (`http_server_request_duration_seconds`: for a stream, the time to its first
/// byte, not its length), and `http_server_active_requests` for those being handled now. It wraps the router's
/// responder rather than sitting among its middleware, so requests no route matches are counted too. The
/// route is the template the router matched (`/api/chat/sessions/{id}`), `unmatched` for any other path: never a
/// raw path, so the labels stay bounded whatever clients send.
public struct MeteredRouter<Builder: HTTPResponderBuilder>: HTTPResponderBuilder where Builder.Responder.Context: RequestContext {
    let builder: Builder

    /// `builder` (a `Router`) with its requests measured.
    public init(_ builder: Builder) {
        self.builder = builder
    }

    public func buildResponder() -> MeteredResponder<Builder.Responder> {
        MeteredResponder(wrapped: builder.buildResponder())
    }
}

/// The responder `MeteredRouter` builds.
public struct MeteredResponder<Wrapped: HTTPResponder>: HTTPResponder where Wrapped.Context: RequestContext {
    let wrapped: Wrapped

    public func respond(to request: Request, context: Wrapped.Context) async throws -> Response {
        let clock = ContinuousClock()
        let started = clock.now
        let method = request.method.rawValue
        let active = Meter(label: "http_server_active_requests", dimensions: [("method", method)])
        active.increment()
        defer { active.decrement() }
        do {
            let response = try await wrapped.respond(to: request, context: context)
            Self.record(route: context.routeLabel, method: method, status: response.status.code, duration: clock.now - started)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            Self.record(route: context.routeLabel, method: method, status: status, duration: clock.now - started)
            throw error
        }
    }

    private static func record(route: String, method: String, status: Int, duration: Duration) {
        Counter(label: "http_server_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))]).increment()
        let (seconds, attoseconds) = duration.components
        Timer(label: "http_server_request_duration_seconds", dimensions: [("route", route), ("method", method)], preferredDisplayUnit: .seconds)
            .recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

extension RequestContext {
    /// The route template the router matched (`/api/chat/sessions/{id}`), `unmatched` for any other path: the
    /// bounded name metrics, logs and spans give a request. (Templates start with `/`; the router names a miss
    /// `NotFound`, and a request it never reached has none.)
    public var routeLabel: String {
        endpointPath.flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "unmatched"
    }
}

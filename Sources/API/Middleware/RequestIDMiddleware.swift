import ChatCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Telemetry
import Tracing

/// Gives every request an id (the caller's `X-Request-Id` if it is sane, else a new one) and a trace (the
/// caller's W3C `traceparent` if it is valid, else a new one), puts both in every log line written while it is
/// handled (`requestId`, `traceId`), returns the id in `X-Request-Id`, and logs one line per request at info:
/// method, route template, status and the time to the response head (never the path's query string, which may
/// hold an `access_token`).
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var context = context
        context.requestID = Self.acceptable(request.headers[.xRequestID]) ?? RandomID.uuidString()
        // A client's trace is continued, but whether it is recorded is decided here, not by the client's flags.
        var trace = request.headers[.traceparent].flatMap(TraceContext.init(traceparent:)) ?? .start()
        trace.sampled = true
        context.trace = trace
        let ids: Logger.Metadata = ["requestId": .string(context.requestID), "traceId": .string(trace.traceID)]
        context.logger[metadataKey: "requestId"] = ids["requestId"]
        context.logger[metadataKey: "traceId"] = ids["traceId"]
        // A server span (recorded when a tracer is installed: the OTLP build) continues the request's trace.
        var response = try await withSpan("HTTP \(request.method.rawValue)", context: trace.serviceContext(), ofKind: .server) { span in
            let response = try await LogContext.with(ids) {
                try await TraceContext.$current.withValue(trace) { try await next(request, context) }
            }
            let route = context.routeLabel
            span.operationName = "\(request.method.rawValue) \(route)"
            span.attributes["http.request.method"] = request.method.rawValue
            span.attributes["http.route"] = route
            span.attributes["http.response.status_code"] = Int(response.status.code)
            span.attributes["chat.request_id"] = context.requestID
            if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
            return response
        }
        response.headers[.xRequestID] = context.requestID
        let route = context.routeLabel
        var fields: Logger.Metadata = [
            "method": .string(request.method.rawValue), "route": .string(route),
            "status": .stringConvertible(response.status.code),
            "durationMs": .stringConvertible(((ContinuousClock.now - started) / .microseconds(1)).rounded() / 1000),
        ]
        if let user = context.caller.withLockedValue({ $0 }) { fields["userId"] = .string(user) }
        // Probes and scrapes come every few seconds: at info they would bury the requests people make.
        let routine = ["/livez", "/readyz", "/metrics"].contains(route) && response.status == .ok
        context.logger.log(level: routine ? .debug : .info, "request", metadata: fields)
        return response
    }

    private static func acceptable(_ value: String?) -> String? {
        guard let value, (1...128).contains(value.utf8.count),
            value.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95 || $0 == 46 })
        else { return nil }
        return value
    }
}

extension HTTPField.Name {
    /// `X-Request-Id`.
    static let xRequestID = Self("X-Request-Id")!
    /// W3C Trace Context's `traceparent`.
    static let traceparent = Self("traceparent")!
}

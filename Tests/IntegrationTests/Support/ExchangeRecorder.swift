import Foundation
import Hummingbird
import NIOHTTP1
import Telemetry
import NIOConcurrencyHelpers

/// Wraps chat-api's router in the in-process tests and, when `OPENAPI_EXCHANGES` names a file, appends one
/// JSON line per answered request: method, the route template matched, status, content type and the body as
/// sent (an event stream whole, as the client read it). `scripts/openapi_check.py` then validates every body
/// against the OpenAPI document's schema for that operation and status.
struct ExchangeRecorder<Builder: HTTPResponderBuilder>: HTTPResponderBuilder where Builder.Responder.Context: RequestContext {
    let builder: Builder

    init(_ builder: Builder) {
        self.builder = builder
    }

    func buildResponder() -> RecordingResponder<Builder.Responder> {
        RecordingResponder(wrapped: builder.buildResponder())
    }
}

/// The responder `ExchangeRecorder` builds.
struct RecordingResponder<Wrapped: HTTPResponder>: HTTPResponder where Wrapped.Context: RequestContext {
    let wrapped: Wrapped

        func respond(to request: Request, context: Wrapped.Context) async throws -> Response {
            var response = try await wrapped.respond(to: request, context: context)
            guard let path = ExchangeLog.path else { return response }
            let collected = NIOLockedValueBox(ByteBuffer())
            let method = request.method.rawValue
            let status = response.status.code
            let contentType = response.headers[.contentType] ?? ""
            let teed = response.body.map { buffer in
                _ = collected.withLockedValue { $0.writeImmutableBuffer(buffer) }
                return buffer
            }
            response.body = ResponseBody(contentLength: teed.contentLength) { writer in
                defer {
                    let body = collected.withLockedValue { String(buffer: $0) }
                    ExchangeLog.record(
                        method: method, route: context.routeLabel, status: status, contentType: contentType, body: body, server: "chat-api", to: path
                    )
                }
                try await teed.write(writer)
            }
            return response
        }
}

/// The file exchanges are appended to, one JSON object per line.
enum ExchangeLog {
    static let path = ProcessInfo.processInfo.environment["OPENAPI_EXCHANGES"]
    private static let lock = NIOLock()

    /// Appends one answer: the route template when the server side records it, else the request's path (the
    /// check finds its template); `server` is the answering process's `Server` header.
    static func record(
        method: String, route: String? = nil, path requestPath: String? = nil, status: Int, contentType: String, body: String, server: String,
        to path: String
    ) {
        var record: [String: Any] = ["method": method, "status": status, "contentType": contentType, "body": body, "server": server]
        if let route { record["route"] = route }
        if let requestPath { record["path"] = requestPath }
        append(record, to: path)
    }

    /// Appends an answer a test client received from `url` (when `OPENAPI_EXCHANGES` is set): the check keeps
    /// it when the `Server` header says chat-api and finds the operation from the path.
    static func record(method: String, url: String, status: Int, headers: HTTPHeaders, body: String) {
        guard let log = path else { return }
        record(
            method: method, path: URLComponents(string: url)?.path ?? url, status: status, contentType: headers.first(name: "content-type") ?? "",
            body: body, server: headers.first(name: "server") ?? "", to: log
        )
    }

    private static func append(_ record: [String: Any], to path: String) {
        guard var line = try? JSONSerialization.data(withJSONObject: record) else { return }
        line.append(UInt8(ascii: "\n"))
        lock.withLock {
            if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
            guard let handle = FileHandle(forWritingAtPath: path) else { return }
            defer { try? handle.close() }
            _ = try? handle.seekToEnd()
            try? handle.write(contentsOf: line)
        }
    }
}

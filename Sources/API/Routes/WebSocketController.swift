import CORS
import ChatCore
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket

/// The event streams over WebSocket, for browsers and clients that prefer one: `GET
/// /api/chat/sessions/:id/observe` (`lastEventId` to resume) and `GET /api/chat/sessions/:id/stream` (with `message`, or `lastEventId` to
/// resume), upgraded. The same authorization as the SSE streams (`Authorization`, or `access_token` in the query),
/// the same events as one JSON text message each (`WebSocketEventSink`), keep-alive by ping and pong.
///
/// Every check runs after the upgrade (a browser is never shown the status of a refused handshake): a refusal
/// is an `error` message whose `data` has the `code`, `message` and HTTP `status` (and `retryAfter`), then a
/// close with code 4000 + that status (4401, 4403, 4404, 4429…). Only a page of an origin that may not call the
/// API is refused the handshake itself (a bare 400). A stream ends with close 1000 after its last event, 4401
/// after `TOKEN_EXPIRED`, 1013 after `CLIENT_TOO_SLOW`, and 1001 (or 1000) when the server stops; the client
/// resumes with `lastEventId`.
struct WebSocketController: Sendable {
    let observe: ObserveController
    let generation: GenerationController
    /// What a plain request of these routes passes through before its handler (the client's address, the
    /// per-IP limit, authentication, the per-user limit), run on each upgraded request.
    let admission: [any MiddlewareProtocol<Request, Response, ChatRequestContext>]
    /// The origins whose pages may open a socket (besides the API's own).
    let cors: CORSPolicy

    /// The routes, on the router that decides upgrades (see `buildRoutes`).
    func register(on router: Router<ChatRequestContext>) {
        router.ws("/api/chat/sessions/:id/observe", shouldUpgrade: checkOrigin) { [self] inbound, outbound, socket in
            await Self.serve(inbound, outbound, logger: socket.logger) { sink in
                let context = try await admit(socket.request, socket.requestContext)
                let start = try await observe.start(socket.request, context: context)
                let lease = try await observe.lease(start)
                return try await observe.stream(start, lease: lease, to: &sink)
            }
        }
        router.ws("/api/chat/sessions/:id/stream", shouldUpgrade: checkOrigin) { [self] inbound, outbound, socket in
            await Self.serve(inbound, outbound, logger: socket.logger) { sink in
                let context = try await admit(socket.request, socket.requestContext)
                // The client already has the job's last event: nothing to send.
                guard let stream = try await generation.openStream(socket.request, context: context) else { return .finished }
                return try await generation.relay(stream, to: &sink)
            }
        }
    }

    /// Runs `admission` on an upgraded request; the context it leaves (with the caller), or the refusal.
    func admit(_ request: Request, _ context: ChatRequestContext) async throws -> ChatRequestContext {
        var admitted: ChatRequestContext?
        let response = try await Self.chain(admission[...], request, context) { _, context in
            admitted = context
            return Response(status: .ok)
        }
        if let admitted { return admitted }
        if response.status == .tooManyRequests {
            throw ChatError(
                .tooManyRequests, code: "RATE_LIMITED", message: "Too many requests, please try again later",
                retryAfter: response.headers[.retryAfter].flatMap { Int($0) } ?? 1
            )
        }
        throw ChatError(.forbidden, code: "REFUSED", message: "The request was refused (\(response.status.code))")
    }

    private static func chain(
        _ middlewares: ArraySlice<any MiddlewareProtocol<Request, Response, ChatRequestContext>>, _ request: Request, _ context: ChatRequestContext,
        last: (Request, ChatRequestContext) async throws -> Response
    ) async throws -> Response {
        guard let first = middlewares.first else { return try await last(request, context) }
        return try await first.handle(request, context: context) { request, context in
            try await chain(middlewares.dropFirst(), request, context, last: last)
        }
    }

    /// A browser names the page's origin on every socket it opens (`http(s)://…`, or `null` for a local file):
    /// only the API's own origin and those of `CORS_ALLOWED_ORIGINS` may open one. A client that sends no
    /// `Origin`, or one no page can have (WebSocket clients often send `ws://host`), is not a page.
    @Sendable func checkOrigin(_ request: Request, _ context: ChatRequestContext) async throws -> RouterShouldUpgrade {
        guard let origin = request.headers[.origin], Self.isPage(origin), !Self.allows(origin, host: request.head.authority, policy: cors) else {
            return .upgrade([:])
        }
        context.logger.info("WebSocket refused to a page of another origin", metadata: ["origin": "\(origin)"])
        return .dontUpgrade
    }

    /// Whether `origin` is one a browser sends for a page.
    static func isPage(_ origin: String) -> Bool {
        let origin = origin.lowercased()
        return origin.hasPrefix("http://") || origin.hasPrefix("https://") || origin == "null"
    }

    /// Whether a page of `origin` may open a socket on `host` (the request's authority).
    static func allows(_ origin: String, host: String?, policy: CORSPolicy) -> Bool {
        if policy.allows(origin) { return true }
        guard let host else { return false }
        let origin = origin.lowercased()
        return origin == "http://" + host.lowercased() || origin == "https://" + host.lowercased()
    }

    /// Runs `relay` on the socket, reading the client's frames beside it (which answers its pings and notices its
    /// close: the relay then stops), and closes the socket with the code of how the relay ended.
    static func serve(
        _ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, logger: Logger,
        _ relay: @escaping @Sendable (inout WebSocketEventSink) async throws -> RelayEnd
    ) async {
        enum Finished { case relay, client }
        let opened = ContinuousClock.now
        do {
            try await withThrowingTaskGroup(of: Finished.self) { group in
                group.addTask {
                    var sink = WebSocketEventSink(outbound: outbound)
                    let code: WebSocketErrorCode
                    let ended: String
                    do {
                        let end = try await relay(&sink)
                        code = closeCode(end)
                        ended = "\(end)"
                    } catch where Self.clientGone(error) {
                        // The client went away mid-write: nothing to tell it, nothing wrong here.
                        logger.debug("WebSocket client gone", metadata: ["error": "\(error)"])
                        return .client
                    } catch {
                        code = try await refuse(error, sink: &sink, logger: logger)
                        ended = "refused (\(Self.number(code)))"
                    }
                    // How the relay ended; on shutdown the WebSocket library may already have closed with 1000.
                    logger.info("WebSocket closed", metadata: [
                        "ended": "\(ended)", "closeCode": "\(Self.number(code))", "durationMs": "\((ContinuousClock.now - opened).milliseconds)",
                    ])
                    try await outbound.close(code, reason: nil)
                    return .relay
                }
                group.addTask {
                    // What the client says is not read for meaning; a message larger than this closes the socket.
                    for try await _ in inbound.messages(maxSize: 4 * 1024) {}
                    return .client
                }
                if try await group.next() == .relay {
                    // Give the client a moment to answer the close.
                    group.addTask {
                        try await Task.sleep(for: .seconds(5))
                        return .client
                    }
                    _ = try await group.next()
                }
                group.cancelAll()
            }
        } catch {
            logger.debug("WebSocket ended", metadata: ["error": "\(error)"])
        }
    }

    /// Whether `error` says the client went away (its connection closed, or the relay was cancelled because it
    /// did) rather than that something failed.
    static func clientGone(_ error: any Error) -> Bool {
        Task.isCancelled || error is CancellationError || error is ChannelError || error is NIOAsyncWriterError
    }

    /// The numeric close code.
    static func number(_ code: WebSocketErrorCode) -> UInt16 {
        var buffer = ByteBuffer()
        buffer.write(webSocketErrorCode: code)
        return buffer.readInteger(as: UInt16.self) ?? 0
    }

    /// Writes an `error` message for an error raised after the upgrade and returns the close code for it.
    private static func refuse(_ error: any Error, sink: inout WebSocketEventSink, logger: Logger) async throws -> WebSocketErrorCode {
        let (status, code, message) = ErrorMiddleware.describe(error)
        if status.code >= 500, (error as? ChatError)?.retryAfter == nil {
            logger.error("WebSocket stream failed", metadata: ["error": "\(error)"])
        }
        var data = #"{"code":""#
        JSONText.appendEscaped(code, to: &data)
        data += #"","message":""#
        JSONText.appendEscaped(message, to: &data)
        data += #"","status":\#(status.code)"#
        if let retryAfter = (error as? ChatError)?.retryAfter { data += #","retryAfter":\#(retryAfter)"# }
        data += "}"
        try await sink.write(id: nil, event: "error", data: data)
        return .unknown(UInt16(4000 + status.code))
    }

    /// The close code for how a relay ended.
    static func closeCode(_ end: RelayEnd) -> WebSocketErrorCode {
        switch end {
        case .finished: .normalClosure
        case .tokenExpired: .unknown(4401)
        case .clientTooSlow: .unknown(1013)
        case .shutdown: .goingAway
        }
    }
}

import Hummingbird

/// Refuses, with 431 `HEADERS_TOO_LARGE`, a request whose header fields add up to more than `maxBytes` (names,
/// values and the four bytes of separators each line has): a bearer token and the usual headers need a few
/// kilobytes, and nothing the API serves reads more.
struct HeaderLimitMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext
    /// The default budget for all header fields of one request.
    static let defaultMaxBytes = 32 * 1024
    let maxBytes: Int

    init(maxBytes: Int = defaultMaxBytes) {
        self.maxBytes = maxBytes
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var total = 0
        for field in request.headers {
            total += field.name.rawName.utf8.count + field.value.utf8.count + 4
            if total > maxBytes {
                return Response.json(
                    status: HTTPResponse.Status(code: 431, reasonPhrase: "Request Header Fields Too Large"),
                    ErrorBody(message: "The request's header fields are too large", code: "HEADERS_TOO_LARGE", requestId: context.requestID)
                )
            }
        }
        return try await next(request, context)
    }
}

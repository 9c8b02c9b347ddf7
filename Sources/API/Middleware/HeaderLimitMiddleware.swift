import Hummingbird

/// Refuses, with 431 `HEADERS_TOO_LARGE`, a request whose header fields add up to more than `maxBytes` (names,
/// values and the four bytes of separators each line has): a bearer token and the usual headers need a few
/// kilobytes, and nothing the API serves reads more. A target (path and query) longer than `maxTargetBytes` is
/// 414 `URI_TOO_LONG`: the longest message the query form of `/stream` carries, percent-encoded, fits.
struct HeaderLimitMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext
    /// The default budget for all header fields of one request.
    static let defaultMaxBytes = 32 * 1024
    /// The default longest target: three bytes per byte of the longest message, and room for the rest.
    static let defaultMaxTargetBytes = 3 * SessionController.maxMessageBytes + 8 * 1024
    let maxBytes: Int
    let maxTargetBytes: Int

    init(maxBytes: Int = defaultMaxBytes, maxTargetBytes: Int = defaultMaxTargetBytes) {
        self.maxBytes = maxBytes
        self.maxTargetBytes = maxTargetBytes
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.string.utf8.count > maxTargetBytes {
            return ErrorMiddleware.response(
                request, status: .uriTooLong, code: "URI_TOO_LONG", message: "The request's URI is too long", requestID: context.requestID
            )
        }
        var total = 0
        for field in request.headers {
            total += field.name.rawName.utf8.count + field.value.utf8.count + 4
            if total > maxBytes {
                return ErrorMiddleware.response(
                    request, status: HTTPResponse.Status(code: 431, reasonPhrase: "Request Header Fields Too Large"), code: "HEADERS_TOO_LARGE",
                    message: "The request's header fields are too large", requestID: context.requestID
                )
            }
        }
        return try await next(request, context)
    }
}

import ChatCore
import Foundation
import Hummingbird

/// Turns every error into `{"message", "code"}` with the right status; no driver message or stack trace
/// reaches the client. The one place where errors become HTTP statuses.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = AccountingRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let (status, code, message) = Self.describe(error)
            if status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            }
            return JSONReply.make(status, ["message": message, "code": code])
        }
    }

    /// The status, code and message a client sees for `error`.
    static func describe(_ error: any Error) -> (HTTPResponse.Status, String, String) {
        switch error {
        case let error as ChatError:
            return (status(of: error.kind), error.code, error.message)
        case let error as HTTPError:
            switch error.status {
            case .notFound: return (.notFound, "NOT_FOUND", "Not found")
            case .methodNotAllowed: return (.methodNotAllowed, "METHOD_NOT_ALLOWED", "Method not allowed")
            case .contentTooLarge: return (.contentTooLarge, "BODY_TOO_LARGE", "The request body is too large")
            case .unauthorized: return (.unauthorized, "INVALID_TOKEN", "Invalid authentication token")
            default:
                return (error.status, error.status.reasonPhrase.uppercased().replacingOccurrences(of: " ", with: "_"), error.body ?? error.status.reasonPhrase)
            }
        default:
            return (.internalServerError, "INTERNAL_ERROR", "Internal server error")
        }
    }

    /// The HTTP status of each kind of `ChatError`.
    static func status(of kind: ChatError.Kind) -> HTTPResponse.Status {
        switch kind {
        case .badRequest: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .conflict: .conflict
        case .paymentRequired: HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required")
        case .tooManyRequests: .tooManyRequests
        case .unavailable: .serviceUnavailable
        case .badGateway: .badGateway
        case .timeout: .gatewayTimeout
        case .internal: .internalServerError
        }
    }
}

/// JSON responses.
enum JSONReply {
    /// A response with `object` (anything JSONSerialization accepts) as its JSON body.
    static func make(_ status: HTTPResponse.Status, _ object: Any) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `date` as ISO 8601 with milliseconds, in UTC.
    static func timestamp(_ date: Date) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
    }

    /// `value`, or JSON null.
    static func orNull(_ value: Any?) -> Any {
        value ?? NSNull()
    }
}

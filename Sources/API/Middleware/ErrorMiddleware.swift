import ChatCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Queue

/// Turns every error into `{"message", "code", "requestId"}` with the right status; nothing of a driver's
/// message or a stack trace reaches the client. The one place where errors become HTTP statuses.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let (status, code, message) = Self.describe(error)
            if status.code >= 500, (error as? ChatError)?.retryAfter == nil {
                context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            }
            var response = Self.response(request, status: status, code: code, message: message, requestID: context.requestID)
            if let retryAfter = (error as? ChatError)?.retryAfter { response.headers[.retryAfter] = String(retryAfter) }
            return response
        }
    }

    /// An error's body: `{"message", "code", "requestId"}`, or under `/v1/` OpenAI's `{"error": {...}}`, which
    /// OpenAI's SDKs turn into their typed errors.
    static func response(_ request: Request, status: HTTPResponse.Status, code: String, message: String, requestID: String) -> Response {
        if request.uri.path.hasPrefix("/v1/") {
            var response = Response.json(status: status, OpenAIErrorBody(status: status.code, code: code, message: message))
            // OpenAI's SDKs retry 5xx answers on their own; a reply that failed or is still running must not be asked
            // for again (each try is a new paid job).
            if status == .badGateway || status == .gatewayTimeout { response.headers[HTTPField.Name("x-should-retry")!] = "false" }
            return response
        }
        return Response.json(status: status, ErrorBody(message: message, code: code, requestId: requestID))
    }

    static func describe(_ error: any Error) -> (HTTPResponse.Status, String, String) {
        switch error {
        case let error as ChatError:
            return (status(of: error.kind), error.code, error.message)
        case is RedisClientError, is RedisServerError:
            return (.serviceUnavailable, "QUEUE_UNAVAILABLE", "The queue is unavailable")
        case is NIOTooManyBytesError:
            // A body read past its route's limit.
            return (.contentTooLarge, "BODY_TOO_LARGE", "The request body is too large")
        case let error as HTTPError:
            switch error.status {
            case .notFound: return (.notFound, "NOT_FOUND", "Not found")
            case .methodNotAllowed: return (.methodNotAllowed, "METHOD_NOT_ALLOWED", "Method not allowed")
            case .contentTooLarge: return (.contentTooLarge, "BODY_TOO_LARGE", "The request body is too large")
            case .unauthorized: return (.unauthorized, "UNAUTHORIZED", "Invalid authentication token")
            default:
                let message = error.body ?? error.status.reasonPhrase
                return (error.status, error.status.reasonPhrase.uppercased().replacingOccurrences(of: " ", with: "_"), message)
            }
        default:
            return (.internalServerError, "INTERNAL_ERROR", "Internal server error")
        }
    }

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

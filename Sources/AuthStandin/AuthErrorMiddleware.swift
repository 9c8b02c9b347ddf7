import Hummingbird

/// Turns every error into `{"message", "code"}` with the right status (and `Retry-After` for 429); the one
/// place where errors become HTTP responses. Nothing internal reaches the client.
struct AuthErrorMiddleware: RouterMiddleware {
    typealias Context = AuthRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let failure = Self.describe(error)
            if failure.status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            }
            var headers = HTTPFields()
            if let retryAfter = failure.retryAfter { headers[.retryAfter] = String(retryAfter) }
            return JSONResponse.make(status: failure.status, ErrorBody(message: failure.message, code: failure.code), headers: headers)
        }
    }

    /// The status, code and message for any error.
    static func describe(_ error: any Error) -> AuthError {
        switch error {
        case let error as AuthError:
            return error
        case let error as HTTPError:
            switch error.status {
            case .notFound: return AuthError(status: .notFound, code: "NOT_FOUND", message: "Not found")
            case .methodNotAllowed: return AuthError(status: .methodNotAllowed, code: "METHOD_NOT_ALLOWED", message: "Method not allowed")
            case .contentTooLarge: return AuthError(status: .contentTooLarge, code: "BODY_TOO_LARGE", message: "The request body is too large")
            default:
                let code = error.status.reasonPhrase.uppercased().replacingOccurrences(of: " ", with: "_")
                return AuthError(status: error.status, code: code, message: error.status.reasonPhrase)
            }
        default:
            return AuthError(status: .internalServerError, code: "INTERNAL_ERROR", message: "Internal server error")
        }
    }

    private struct ErrorBody: Encodable {
        var message: String
        var code: String
    }
}

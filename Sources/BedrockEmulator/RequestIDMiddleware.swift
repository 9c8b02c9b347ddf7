import Foundation
import Hummingbird

/// Gives every answer an `x-amzn-RequestId` (a fresh lower-case UUID), and turns the router's own errors (no such
/// path or method) into the AWS error a REST-JSON service answers with.
struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound || error.status == .methodNotAllowed {
            response = ServiceError.unknownOperation.response
        }
        response.headers[.amznRequestID] = UUID().uuidString.lowercased()
        return response
    }
}

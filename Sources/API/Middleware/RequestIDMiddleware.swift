import Foundation
import HTTPTypes
import Hummingbird

/// Gives every request an id (the caller's `X-Request-Id` if it is sane, else a new one), returns it in
/// `X-Request-Id`, and logs each request's method, path (never the query string) and status.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = ChatRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.requestID = Self.acceptable(request.headers[.xRequestID]) ?? UUID().uuidString.lowercased()
        context.logger[metadataKey: "request"] = .string(context.requestID)
        var response = try await next(request, context)
        response.headers[.xRequestID] = context.requestID
        context.logger.debug("\(request.method) \(request.uri.path) \(response.status.code)")
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
}

import Hummingbird

/// A failure auth-standin answers with: an HTTP status, a stable SNAKE_CASE code and a sentence for people.
struct AuthError: Error, Sendable, Equatable {
    /// The response status.
    var status: HTTPResponse.Status
    /// A stable code for clients.
    var code: String
    /// A human sentence; never a token, a password or an internal detail.
    var message: String
    /// Seconds to wait before trying again, sent as `Retry-After`.
    var retryAfter: Int?

    /// A malformed or incomplete request body.
    static func badRequest(_ message: String, code: String = "VALIDATION_ERROR") -> AuthError {
        AuthError(status: .badRequest, code: code, message: message)
    }

    /// A wrong password or an unknown user: the same answer for both.
    static let invalidCredentials = AuthError(status: .unauthorized, code: "INVALID_CREDENTIALS", message: "Invalid credentials")
    /// A refresh token that is bad, expired, already used or not a refresh token.
    static let invalidRefreshToken = AuthError(status: .unauthorized, code: "INVALID_REFRESH_TOKEN", message: "Invalid refresh token")
    /// A missing, bad or expired access token.
    static let invalidAccessToken = AuthError(status: .unauthorized, code: "INVALID_TOKEN", message: "Invalid authentication token")

    /// Too many failed logins for the user or the client address.
    static func tooManyAttempts(retryAfter: Int) -> AuthError {
        AuthError(status: .tooManyRequests, code: "TOO_MANY_ATTEMPTS", message: "Too many login attempts", retryAfter: retryAfter)
    }
}

import ChatCore
import Foundation
import Hummingbird

/// The guide's auth endpoints: login, refresh (with rotation), me, and health. Tokens and passwords are
/// never logged.
struct AuthController: Sendable {
    let dependencies: AuthDependencies

    /// Longest username or email accepted.
    static let maxIdentifierLength = 256
    /// Longest password accepted, in bytes.
    static let maxPasswordLength = 1_024
    /// Longest token accepted.
    static let maxTokenLength = 8_192

    func register(on router: Router<AuthRequestContext>) {
        router.post("/api/auth/login", use: login)
        router.post("/api/auth/refresh", use: refresh)
        router.get("/api/auth/me", use: me)
        router.get("/health", use: health)
        router.get("/api/health", use: health)
    }

    /// `{username or email, password}` → 200 `{accessToken, refreshToken, user}`; 401 for a wrong password
    /// or unknown user alike; 429 with `Retry-After` after too many failures for the user or the address.
    @Sendable func login(_ request: Request, context: AuthRequestContext) async throws -> Response {
        let body = try await Self.decode(LoginBody.self, from: request, context: context)
        let identifier = try body.identifier()
        let password = try body.validPassword()
        let directory = dependencies.directory
        // A known user is counted by id, so alternating username and email shares one budget.
        let knownID = directory.userID(for: identifier)
        let userKey = knownID ?? Self.throttleKey(identifier)
        let attempt: LoginThrottle.Attempt
        switch await dependencies.throttle.begin(
            user: userKey, client: context.clientAddress ?? "unknown", now: dependencies.clock().timeIntervalSince1970
        ) {
        case .allowed(let allowed):
            attempt = allowed
        case .refused(let retryAfter):
            context.logger.notice("login refused: too many failures", metadata: ["userId": "\(knownID ?? "unknown")"])
            throw AuthError.tooManyAttempts(retryAfter: retryAfter)
        }
        guard let user = await directory.authenticate(identifier, password: password) else {
            context.logger.notice("login failed", metadata: ["userId": "\(knownID ?? "unknown")"])
            throw AuthError.invalidCredentials
        }
        await dependencies.throttle.succeeded(attempt)
        context.logger.info("login succeeded", metadata: ["userId": "\(user.id)"])
        let tokens = dependencies.issuer.issue(for: user, now: now())
        return Self.noStore(.ok, LoginReply(accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, user: user))
    }

    /// `{refreshToken}` → 200 `{accessToken, refreshToken}`, a new pair; the used refresh token is spent.
    @Sendable func refresh(_ request: Request, context: AuthRequestContext) async throws -> Response {
        let body = try await Self.decode(RefreshBody.self, from: request, context: context)
        guard let token = body.refreshToken, !token.isEmpty else { throw AuthError.badRequest("refreshToken is required") }
        let now = now()
        guard token.utf8.count <= Self.maxTokenLength, let claims = dependencies.issuer.verifyRefresh(token, now: now),
            let user = dependencies.directory.profile(id: claims.subject)
        else { throw AuthError.invalidRefreshToken }
        guard await dependencies.ledger.consume(tokenID: claims.tokenID, expiresAt: claims.expiresAt, now: now) else {
            context.logger.notice("refresh token reused", metadata: ["userId": "\(user.id)"])
            throw AuthError.invalidRefreshToken
        }
        return Self.noStore(.ok, dependencies.issuer.issue(for: user, now: now))
    }

    /// `Authorization: Bearer <access token>` → 200 `{user}`.
    @Sendable func me(_ request: Request, context: AuthRequestContext) async throws -> Response {
        guard let header = request.headers[.authorization] else { throw AuthError.invalidAccessToken }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer", parts[1].utf8.count <= Self.maxTokenLength,
            let caller = dependencies.issuer.verifyAccess(parts[1].trimmingCharacters(in: .whitespaces), now: now()),
            let user = dependencies.directory.profile(id: caller.id)
        else { throw AuthError.invalidAccessToken }
        return Self.noStore(.ok, MeReply(user: user))
    }

    /// 200 `{"status":"ok","service":"auth-service"}`.
    @Sendable func health(_ request: Request, context: AuthRequestContext) async throws -> Response {
        JSONResponse.make(status: .ok, ["status": "ok", "service": "auth-service"])
    }

    private func now() -> Int {
        Int(dependencies.clock().timeIntervalSince1970)
    }

    /// Token responses must not be cached by anything in between.
    private static func noStore(_ status: HTTPResponse.Status, _ body: some Encodable) -> Response {
        JSONResponse.make(status: status, body, headers: [.cacheControl: "no-store"])
    }

    /// The throttle key of a name that is not in the directory: normalized and bounded, so that it is
    /// counted like a real one without letting a client store arbitrary text.
    private static func throttleKey(_ identifier: LoginIdentifier) -> String {
        switch identifier {
        case .username(let name): "unknown-user:" + name.lowercased()
        case .email(let address): "unknown-email:" + address.lowercased()
        }
    }

    /// The body as `T`; empty, not JSON, or of the wrong shape → 400; bigger than the context allows → 413.
    private static func decode<T: Decodable>(_ type: T.Type, from request: Request, context: AuthRequestContext) async throws -> T {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        guard buffer.readableBytes > 0 else { throw AuthError.badRequest("The request body must be a JSON object", code: "INVALID_BODY") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch {
            throw AuthError.badRequest("The request body must be a JSON object with string fields", code: "INVALID_JSON")
        }
    }
}

/// The login request: a username or an email, and a password.
private struct LoginBody: Decodable {
    var username: String?
    var email: String?
    var password: String?

    func identifier() throws -> LoginIdentifier {
        if let username = Self.trimmed(username) {
            guard username.count <= AuthController.maxIdentifierLength else { throw AuthError.badRequest("username is too long") }
            return .username(username)
        }
        if let email = Self.trimmed(email) {
            guard email.count <= AuthController.maxIdentifierLength else { throw AuthError.badRequest("email is too long") }
            return .email(email)
        }
        throw AuthError.badRequest("username or email is required")
    }

    func validPassword() throws -> String {
        guard let password, !password.isEmpty else { throw AuthError.badRequest("password is required") }
        guard password.utf8.count <= AuthController.maxPasswordLength else { throw AuthError.badRequest("password is too long") }
        return password
    }

    private static func trimmed(_ text: String?) -> String? {
        guard let text = text?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return nil }
        return text
    }
}

/// The refresh request.
private struct RefreshBody: Decodable {
    var refreshToken: String?
}

/// The login answer: `{accessToken, refreshToken, user}`.
private struct LoginReply: Encodable {
    var accessToken: String
    var refreshToken: String
    var user: UserProfile
}

/// The /me answer: `{user}`.
private struct MeReply: Encodable {
    var user: UserProfile
}

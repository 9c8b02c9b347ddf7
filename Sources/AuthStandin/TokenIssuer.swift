import ChatCore
import Foundation

/// Signs the access and refresh tokens of directory users and checks the tokens it signed. Access tokens are
/// HS256 with the access secret and carry sub, userId, username, email, role, iat and exp; refresh tokens
/// are HS256 with the refresh secret and carry sub, role, iat, exp, `type: "refresh"` and a unique `jti`.
struct TokenIssuer: Sendable {
    /// The two tokens a login or a refresh hands out.
    struct TokenPair: Sendable, Equatable, Codable {
        var accessToken: String
        var refreshToken: String
    }

    /// What a valid refresh token says.
    struct RefreshClaims: Sendable, Equatable {
        /// The user the token was issued to.
        var subject: String
        /// The token's unique id (`jti`), remembered once used.
        var tokenID: String
        /// Seconds since 1970 at which the token expires.
        var expiresAt: Int
    }

    private let access: AccessTokenVerifier
    private let refresh: AccessTokenVerifier
    private let accessLifetime: Int
    private let refreshLifetime: Int

    /// An issuer with the configuration's secrets and lifetimes.
    init(configuration: AuthConfiguration) throws {
        access = try AccessTokenVerifier(secret: configuration.accessSecret)
        refresh = try AccessTokenVerifier(secret: configuration.refreshSecret)
        accessLifetime = configuration.accessTokenLifetime
        refreshLifetime = configuration.refreshTokenLifetime
    }

    /// A fresh access token and refresh token for `user`, issued at `now` (seconds since 1970).
    func issue(for user: UserProfile, now: Int) -> TokenPair {
        let accessToken = access.sign(
            userID: user.id, role: user.role, lifetime: accessLifetime, now: now,
            extraClaims: ["userId": user.id, "username": user.username, "email": user.email]
        )
        let refreshToken = refresh.sign(
            userID: user.id, role: user.role, lifetime: refreshLifetime, now: now,
            extraClaims: ["type": "refresh", "jti": UUID().uuidString.lowercased()]
        )
        return TokenPair(accessToken: accessToken, refreshToken: refreshToken)
    }

    /// The user an access token proves at `now`, or nil: a bad signature, an expired token, or a refresh token.
    func verifyAccess(_ token: some StringProtocol, now: Int) -> AuthenticatedUser? {
        guard let user = access.verify(token, now: now), Self.claims(of: token)?["type"] == nil else { return nil }
        return user
    }

    /// What a refresh token says, or nil when it is not a valid refresh token at `now` (bad signature,
    /// expired, no `jti`, or not of type refresh, such as an access token).
    func verifyRefresh(_ token: some StringProtocol, now: Int) -> RefreshClaims? {
        guard let user = refresh.verify(token, now: now), let claims = Self.claims(of: token),
            claims["type"] as? String == "refresh",
            let tokenID = claims["jti"] as? String, !tokenID.isEmpty
        else { return nil }
        return RefreshClaims(subject: user.id, tokenID: tokenID, expiresAt: user.expiresAt)
    }

    /// The claims of a token whose signature has already been checked.
    private static func claims(of token: some StringProtocol) -> [String: Any]? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let bytes = Base64URL.decode(parts[1]) else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }
}

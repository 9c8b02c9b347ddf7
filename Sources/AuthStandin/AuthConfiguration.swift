import CORS
import ChatCore

/// Everything auth-standin reads from its environment, validated at start: a bad setting is one clear line.
struct AuthConfiguration: Sendable {
    /// The address to listen on (`HOST`, default 0.0.0.0).
    var host: String
    /// The port to listen on (`PORT`, default 3000, the guide's auth-service port).
    var port: Int
    /// Signs access tokens (`JWT_ACCESS_SECRET`, at least 32 bytes; shared with chat-api and the worker).
    var accessSecret: String
    /// Signs refresh tokens (`JWT_REFRESH_SECRET`, at least 32 bytes, different from the access secret).
    var refreshSecret: String
    /// Access-token lifetime in seconds (`ACCESS_TOKEN_TTL_SECONDS`, default 900 = 15 minutes).
    var accessTokenLifetime: Int
    /// Refresh-token lifetime in seconds (`REFRESH_TOKEN_TTL_SECONDS`, default 604800 = 7 days).
    var refreshTokenLifetime: Int
    /// Failures allowed per user within the window before logins are refused (`LOGIN_MAX_FAILURES`, default 5).
    var loginMaxFailures: Int
    /// The sliding window over which failures count (`LOGIN_FAILURE_WINDOW_SECONDS`, default 900).
    var loginFailureWindow: Int
    /// PBKDF2-HMAC-SHA256 rounds for the stored password hashes (`PASSWORD_HASH_ROUNDS`, default 210,000,
    /// at least 1,000; tests use the minimum to stay fast).
    var passwordHashRounds: Int
    /// The origins whose pages may sign in from a browser (`CORS_ALLOWED_ORIGINS`, as chat-api reads it).
    var cors = try! CORSPolicy(parsing: "")

    /// Failures allowed per client address within the window: four times the per-user limit, so one
    /// address may try a few users but cannot spray a password across all of them.
    var clientMaxFailures: Int { loginMaxFailures * 4 }

    /// The default PBKDF2 rounds: the floor swift-crypto's checked `deriveKey(... rounds:)` accepts.
    static let defaultPasswordHashRounds = 210_000
    /// Fewer rounds than this are refused: below it a stored hash is too cheap to brute-force.
    static let minimumPasswordHashRounds = 1_000

    /// Reads and checks the settings; a bad one throws a `ConfigurationError` naming the variable.
    init(environment: Environment) throws {
        host = environment.string("HOST", default: "0.0.0.0")
        port = try environment.int("PORT", default: 3000, in: 1...65535)
        accessSecret = try Self.secret("JWT_ACCESS_SECRET", in: environment)
        refreshSecret = try Self.secret("JWT_REFRESH_SECRET", in: environment)
        cors = try CORSPolicy(parsing: environment.string("CORS_ALLOWED_ORIGINS", default: ""))
        guard accessSecret != refreshSecret else {
            throw ConfigurationError("JWT_REFRESH_SECRET must differ from JWT_ACCESS_SECRET")
        }
        accessTokenLifetime = try environment.int("ACCESS_TOKEN_TTL_SECONDS", default: 900, in: 1...86_400)
        refreshTokenLifetime = try environment.int("REFRESH_TOKEN_TTL_SECONDS", default: 604_800, in: 1...31_536_000)
        loginMaxFailures = try environment.int("LOGIN_MAX_FAILURES", default: 5, in: 1...1_000)
        loginFailureWindow = try environment.int("LOGIN_FAILURE_WINDOW_SECONDS", default: 900, in: 1...86_400)
        passwordHashRounds = try environment.int(
            "PASSWORD_HASH_ROUNDS", default: Self.defaultPasswordHashRounds, in: Self.minimumPasswordHashRounds...10_000_000
        )
    }

    private static func secret(_ key: String, in environment: Environment) throws -> String {
        let value = try environment.required(key)
        guard value.utf8.count >= AccessTokenVerifier.minimumSecretLength else {
            throw ConfigurationError(
                "\(key) must be at least \(AccessTokenVerifier.minimumSecretLength) bytes long (it has \(value.utf8.count))"
            )
        }
        return value
    }
}

import CORS
import ChatCore
import Foundation
import Hummingbird
import Logging
import Telemetry

/// What the routes need; tests build it from an in-memory configuration.
struct AuthDependencies: Sendable {
    /// The seeded users and their password hashes.
    var directory: UserDirectory
    /// Signs and checks tokens.
    var issuer: TokenIssuer
    /// Refuses logins after too many failures.
    var throttle: LoginThrottle
    /// The refresh tokens already exchanged.
    var ledger: RefreshTokenLedger
    /// The wall clock that tokens and the throttle use.
    var clock: @Sendable () -> Date
    /// The origins whose pages may sign in from a browser.
    var cors: CORSPolicy

    /// Hashes the seed users' passwords (off the event loops) and builds the rest from `configuration`.
    init(configuration: AuthConfiguration, clock: @escaping @Sendable () -> Date = { Date() }) async throws {
        directory = try await UserDirectory.hashing(SeedUsers.all, rounds: configuration.passwordHashRounds)
        issuer = try TokenIssuer(configuration: configuration)
        throttle = LoginThrottle(
            maxPerUser: configuration.loginMaxFailures, maxPerClient: configuration.clientMaxFailures, window: configuration.loginFailureWindow
        )
        ledger = RefreshTokenLedger()
        self.clock = clock
        cors = configuration.cors
    }
}

/// Builds auth-standin: the users are hashed before the server starts; then the router and the server.
func buildApplication(configuration: AuthConfiguration) async throws -> some ApplicationProtocol {
    let logger = Logger(label: "auth-standin")
    let clock = ContinuousClock()
    let start = clock.now
    let dependencies = try await AuthDependencies(configuration: configuration)
    logger.info(
        "hashed the seed users' passwords",
        metadata: ["users": "\(dependencies.directory.count)", "rounds": "\(configuration.passwordHashRounds)", "took": "\(clock.now - start)"]
    )
    return Application(
        router: MeteredRouter(buildRouter(dependencies)),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "auth-standin"),
        logger: logger
    )
}

/// The routes of auth-standin behind the error middleware.
func buildRouter(_ dependencies: AuthDependencies) -> Router<AuthRequestContext> {
    let router = Router(context: AuthRequestContext.self)
    router.add(middleware: CORSMiddleware(policy: dependencies.cors))
    router.add(middleware: AuthErrorMiddleware())
    router.addMetricsRoute()
    AuthController(dependencies: dependencies).register(on: router)
    return router
}

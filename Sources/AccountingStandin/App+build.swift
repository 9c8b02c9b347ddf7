import CORS
import ChatCore
import Hummingbird
import Logging
import Telemetry

/// What the routes need; tests build it with their own store and clock.
struct AccountingDependencies: Sendable {
    var store: AccountStore
    var verifier: AccessTokenVerifier
    /// When set, only callers presenting it may reserve and settle credits (`ACCOUNTING_SERVICE_TOKEN`).
    var serviceCredential: ServiceCredential? = nil
    /// The origins whose pages may call the stand-in from a browser.
    var cors = try! CORSPolicy(parsing: "")
}

/// Builds the stand-in: the store (its database opened, with its tables, before serving), the sweeper as a service of the
/// application's `ServiceGroup` (it closes the store when it stops), the router and the server.
func buildApplication(configuration: AccountingConfiguration) async throws -> some ApplicationProtocol {
    let logger = Logger(label: "accounting-standin")
    let store = try AccountStore(
        databasePath: configuration.databasePath, reservationTTL: configuration.reservationTTL, catalog: configuration.catalog,
        logger: Logger(label: "accounting-standin.database")
    )
    var app = Application(
        router: MeteredRouter(buildRouter(AccountingDependencies(
            store: store, verifier: try AccessTokenVerifier(secret: configuration.jwtAccessSecret), serviceCredential: configuration.serviceCredential,
            cors: configuration.cors
        ))),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "accounting-standin"),
        logger: logger
    )
    app.addServices(ReservationSweeper(store: store, interval: configuration.sweepInterval, logger: Logger(label: "accounting-standin.sweep")))
    return app
}

/// The routes: `/health` and `/api/health` open to anyone, everything else behind the bearer token.
func buildRouter(_ dependencies: AccountingDependencies) -> Router<AccountingRequestContext> {
    let router = Router(context: AccountingRequestContext.self)
    router.add(middleware: CORSMiddleware(policy: dependencies.cors))
    router.add(middleware: ErrorMiddleware())
    router.addMetricsRoute()
    HealthController(store: dependencies.store).register(on: router)
    let authentication = AuthenticationMiddleware(verifier: dependencies.verifier)
    CreditsController(store: dependencies.store).register(on: router.group("/api/credits").add(middleware: authentication))
    StreamingSessionsController(store: dependencies.store, serviceCredential: dependencies.serviceCredential)
        .register(on: router.group("/api/streaming-sessions").add(middleware: authentication))
    UsageController(store: dependencies.store).register(on: router.group("/api/usage").add(middleware: authentication))
    return router
}

import CORS
import Catalog
import ChatCore

/// Everything the accounting stand-in reads from its environment, validated at start.
struct AccountingConfiguration: Sendable {
    var host: String
    var port: Int
    /// Its own database, an SQLite file (`ACCOUNTING_DATABASE_PATH`), created with its folder when missing.
    var databasePath: String
    /// The shared HS256 secret (`JWT_ACCESS_SECRET`, at least 32 bytes).
    var jwtAccessSecret: String
    /// How long an unfinalized reservation holds its credits (`RESERVATION_TTL_SECONDS`).
    var reservationTTL: Duration
    /// How often expired reservations and allocations are swept (`SWEEP_INTERVAL_MS`).
    var sweepInterval: Duration
    /// The chat service's credential (`ACCOUNTING_SERVICE_TOKEN`): when set, reservations and settlements need it.
    var serviceCredential: ServiceCredential?
    /// The origins whose pages may read balances from a browser (`CORS_ALLOWED_ORIGINS`, as chat-api reads it).
    var cors: CORSPolicy
    /// The models and their prices: the built-in catalog, or what `MODEL_CATALOG_PATH` makes of it.
    var catalog: ModelCatalog

    /// Reads and checks the settings; a bad one throws a `ConfigurationError` with one clear line.
    init(environment: Environment) throws {
        host = environment.string("HOST", default: "0.0.0.0")
        port = try environment.int("PORT", default: 3001, in: 1...65535)
        databasePath = environment.string("ACCOUNTING_DATABASE_PATH", default: ".data/accounting/accounting.sqlite3")
        catalog = try ModelCatalog.load(environment: environment)
        jwtAccessSecret = try AccessTokenVerifier.secret(from: environment)
        reservationTTL = .seconds(try environment.int("RESERVATION_TTL_SECONDS", default: 900, in: 1...604_800))
        sweepInterval = try environment.milliseconds("SWEEP_INTERVAL_MS", default: .seconds(5), in: 10...3_600_000)
        serviceCredential = try ServiceCredential.from(environment)
        cors = try CORSPolicy(parsing: environment.string("CORS_ALLOWED_ORIGINS", default: ""))
    }
}

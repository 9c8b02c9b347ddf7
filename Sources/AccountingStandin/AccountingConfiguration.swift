import ChatCore
import ChatStore

/// Everything the accounting stand-in reads from its environment, validated at start.
struct AccountingConfiguration: Sendable {
    var host: String
    var port: Int
    /// Its own database: `MONGO_URI`, whose path names it (`accounting` when the URI names none).
    var mongo: MongoConfiguration
    /// The shared HS256 secret (`JWT_ACCESS_SECRET`, at least 32 bytes).
    var jwtAccessSecret: String
    /// How long an unfinalized reservation holds its credits (`RESERVATION_TTL_SECONDS`).
    var reservationTTL: Duration
    /// How often expired reservations and allocations are swept (`SWEEP_INTERVAL_MS`).
    var sweepInterval: Duration

    /// Reads and checks the settings; a bad one throws a `ConfigurationError` with one clear line.
    init(environment: Environment) throws {
        host = environment.string("HOST", default: "0.0.0.0")
        port = try environment.int("PORT", default: 3001, in: 1...65535)
        mongo = try MongoConfiguration(environment: environment, defaultURI: "mongodb://127.0.0.1:27018/accounting")
        mongo.uri = Self.namingDatabase(mongo.uri, default: "accounting")
        jwtAccessSecret = try AccessTokenVerifier.secret(from: environment)
        reservationTTL = .seconds(try environment.int("RESERVATION_TTL_SECONDS", default: 900, in: 1...604_800))
        sweepInterval = try environment.milliseconds("SWEEP_INTERVAL_MS", default: .seconds(5), in: 10...3_600_000)
    }

    /// `uri` with `/database` inserted when its path names no database.
    static func namingDatabase(_ uri: String, default database: String) -> String {
        guard let scheme = uri.range(of: "://") else { return uri }
        let rest = uri[scheme.upperBound...]
        let hosts = rest.prefix { $0 != "/" && $0 != "?" }
        var path = rest[hosts.endIndex...]
        if path.hasPrefix("/") { path = path.dropFirst() }
        let name = path.prefix { $0 != "?" }
        guard name.isEmpty else { return uri }
        let query = path[name.endIndex...]
        return uri[..<scheme.upperBound] + hosts + "/" + database + query
    }
}

import ChatCore
import Foundation

/// Where Redis is and how long to wait for it.
public struct RedisConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// The ACL user (Redis 6 and later); nil for the default user.
    public var username: String?
    public var password: String?
    public var database: Int
    /// Whether to speak TLS (`rediss://`), verifying the server's certificate against the system's roots or
    /// `tlsCAFile`, and its name against `host`.
    public var tls: Bool = false
    /// A PEM file of the certificate authorities to trust instead of the system's (`REDIS_TLS_CA_FILE`).
    public var tlsCAFile: String?
    /// How long opening a connection may take.
    public var connectTimeout: Duration
    /// How long a reply may take; blocking reads get their block time on top.
    public var commandTimeout: Duration
    /// Idle connections kept for blocking reads (more are opened when needed, and closed after use).
    public var idleBlockingConnections: Int

    /// A configuration with explicit values.
    public init(
        host: String = "127.0.0.1", port: Int = 6380, password: String? = nil, database: Int = 0,
        connectTimeout: Duration = .seconds(2), commandTimeout: Duration = .seconds(5), idleBlockingConnections: Int = 16
    ) {
        self.host = host
        self.port = port
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.idleBlockingConnections = idleBlockingConnections
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS; throws a `ConfigurationError`
    /// naming the problem (never the password).
    public init(url: String) throws {
        let scheme = url.hasPrefix("rediss://") ? "rediss://" : "redis://"
        guard url.hasPrefix(scheme) else {
            throw ConfigurationError("REDIS_URL must start with redis:// or rediss:// (got \(Self.redacted(url)))")
        }
        var rest = Substring(url.dropFirst(scheme.count))
        self.init()
        tls = scheme == "rediss://"
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let parts = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let user = parts.count == 2 ? String(parts[0]).removingPercentEncoding : nil
            let password = parts.last.map(String.init).flatMap { $0.removingPercentEncoding }
            self.username = user?.isEmpty == false ? user : nil
            self.password = password?.isEmpty == false ? password : nil
            if parts.count == 2, self.username != nil, self.password == nil {
                throw ConfigurationError("REDIS_URL names a user without a password: \(Self.redacted(url))")
            }
        }
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let database = Int(path), database >= 0 else {
                    throw ConfigurationError("REDIS_URL has an invalid database number: \(path)")
                }
                self.database = database
            }
        }
        if let colon = rest.lastIndex(of: ":") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
                throw ConfigurationError("REDIS_URL has an invalid port: \(Self.redacted(url))")
            }
            self.port = port
            rest = rest[..<colon]
        }
        guard !rest.isEmpty else { throw ConfigurationError("REDIS_URL has no host: \(Self.redacted(url))") }
        self.host = String(rest)
    }

    /// `url` with whatever stands before its last `@` after the scheme (user and password) replaced by `***`, so
    /// that an error about a bad setting never prints the password in it.
    static func redacted(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@") else { return url }
        let scheme = url.range(of: "://").map { url[..<$0.upperBound] } ?? ""
        return scheme + "***" + url[at...]
    }
}

extension RedisConfiguration {
    /// `REDIS_URL` (default `redis://127.0.0.1:6380`), `REDIS_CONNECT_TIMEOUT_MS` (2 s) and
    /// `REDIS_COMMAND_TIMEOUT_MS` (5 s), as every process of the service reads them.
    public init(environment: Environment) throws {
        try self.init(url: environment.string("REDIS_URL", default: "redis://127.0.0.1:6380"))
        connectTimeout = try environment.milliseconds("REDIS_CONNECT_TIMEOUT_MS", default: .seconds(2))
        commandTimeout = try environment.milliseconds("REDIS_COMMAND_TIMEOUT_MS", default: .seconds(5))
        tlsCAFile = environment["REDIS_TLS_CA_FILE"]
        if let tlsCAFile, !FileManager.default.isReadableFile(atPath: tlsCAFile) {
            throw ConfigurationError("REDIS_TLS_CA_FILE cannot be read: \(tlsCAFile)")
        }
    }
}

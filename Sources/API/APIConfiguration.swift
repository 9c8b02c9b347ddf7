import CORS
import Catalog
import ChatCore
import ChatStore
import Queue

/// Everything chat-api reads from its environment, validated at start.
struct APIConfiguration: Sendable {
    var host: String
    var port: Int
    var redis: RedisConfiguration
    var mongo: MongoConfiguration
    /// The shared HS256 secret (`JWT_ACCESS_SECRET`, at least 32 bytes).
    var jwtAccessSecret: String
    /// How long /readyz and /api/health wait for each dependency.
    var healthTimeout: Duration
    /// Rate limits per client IP and per user and route class.
    var rateLimits: RateLimitSettings
    /// The accounting service (`ACCOUNTING_URL`) and how long one call may take.
    var accountingURL: String
    var accountingTimeout: Duration
    /// The credential sent with every accounting call (`ACCOUNTING_SERVICE_TOKEN`, optional, at least 32 bytes).
    var accountingServiceCredential: ServiceCredential?
    /// Calls to the accounting service in flight at once (`ACCOUNTING_MAX_CONNECTIONS`, 128); more wait for a connection.
    var accountingMaxConnections: Int
    /// The longest reply asked of a model (`GENERATION_MAX_TOKENS`); reservations cover it.
    var maxOutputTokens: Int
    /// The models offered: the built-in catalog, or what `MODEL_CATALOG_PATH` makes of it.
    var catalog: ModelCatalog
    /// How long `POST /messages` waits for the reply (`MESSAGE_WAIT_TIMEOUT_MS`).
    var messageWait: Duration
    /// The jobs stream (`JOB_STREAM`, default `chat:jobs`); API and workers must agree.
    var jobStream: String
    /// How long an enqueued job may wait for a worker before it is ended with `NO_WORKER` and refunded
    /// (`JOB_QUEUE_TIMEOUT_MS`, 120 s).
    var queueTimeout: Duration
    /// How long an event stream may be quiet before a heartbeat comment is sent (`SSE_HEARTBEAT_MS`, 15 s).
    var heartbeatInterval: Duration
    /// The proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`, addresses or CIDR ranges; none
    /// by default: the peer is the client).
    var trustedProxies: TrustedProxies
    /// Per user, over every replica: open reply streams and waiting messages (`MAX_STREAMS_PER_USER`, 10).
    var maxStreamsPerUser: Int
    /// Per user: open observer streams (`MAX_OBSERVERS_PER_USER`, 20).
    var maxObserversPerUser: Int
    /// Per user: unfinished (queued or running) generations (`MAX_GENERATIONS_PER_USER`, 5).
    var maxGenerationsPerUser: Int
    /// Jobs that may wait for a worker before new generations get 503 `QUEUE_FULL` (`QUEUE_MAX_WAITING`, 2000).
    var queueMaxWaiting: Int
    /// How long a connection may sit idle, or take to send a request, before it is closed (`HTTP_IDLE_TIMEOUT_MS`,
    /// 60 s); an open event stream is never idle.
    var httpIdleTimeout: Duration
    /// The origins whose pages may call the API from a browser (`CORS_ALLOWED_ORIGINS`; none by default).
    var cors: CORSPolicy
    /// Whether `/stream` and `/observe` also speak WebSocket (`WEBSOCKETS_ENABLED`, true): off, connections skip the
    /// upgrade handler and the API is HTTP/1.1 alone.
    var webSockets: Bool
    /// The auth service as a browser reaches it, for the console's sign-in (`CONSOLE_AUTH_URL`, default
    /// `AUTH_URL`; empty: the console takes a pasted token).
    var consoleAuthURL: String
    /// The accounting service as a browser reaches it, for the console's balance (`CONSOLE_ACCOUNTING_URL`,
    /// default `ACCOUNTING_URL`).
    var consoleAccountingURL: String

    /// Reads and checks the settings; a bad one throws a `ConfigurationError` with one clear line.
    init(environment: Environment) throws {
        host = environment.string("HOST", default: "0.0.0.0")
        port = try environment.int("PORT", default: 3002, in: 1...65535)
        redis = try RedisConfiguration(environment: environment)
        mongo = try MongoConfiguration(environment: environment, defaultURI: "mongodb://127.0.0.1:27018/chat")
        jwtAccessSecret = try AccessTokenVerifier.secret(from: environment)
        try PublishedSecrets.refuse(jwtAccessSecret, setting: "JWT_ACCESS_SECRET", in: environment)
        healthTimeout = try environment.milliseconds("HEALTH_TIMEOUT_MS", default: .seconds(2))
        rateLimits = try RateLimitSettings(environment: environment)
        accountingURL = environment.string("ACCOUNTING_URL", default: "http://127.0.0.1:3001")
        guard accountingURL.hasPrefix("http://") || accountingURL.hasPrefix("https://") else {
            throw ConfigurationError("ACCOUNTING_URL must be an http:// or https:// URL (got \(accountingURL))")
        }
        accountingTimeout = try environment.milliseconds("ACCOUNTING_TIMEOUT_MS", default: .seconds(3))
        accountingServiceCredential = try ServiceCredential.from(environment)
        accountingMaxConnections = try environment.int("ACCOUNTING_MAX_CONNECTIONS", default: 128, in: 1...10_000)
        maxOutputTokens = try environment.int("GENERATION_MAX_TOKENS", default: 1_024, in: 1...200_000)
        catalog = try ModelCatalog.load(environment: environment)
        messageWait = try environment.milliseconds("MESSAGE_WAIT_TIMEOUT_MS", default: .seconds(120))
        jobStream = environment.string("JOB_STREAM", default: "chat:jobs")
        queueTimeout = try environment.milliseconds("JOB_QUEUE_TIMEOUT_MS", default: .seconds(120), in: 1_000...86_400_000)
        heartbeatInterval = try environment.milliseconds("SSE_HEARTBEAT_MS", default: .seconds(15), in: 100...300_000)
        trustedProxies = try TrustedProxies(parsing: environment.string("TRUSTED_PROXIES", default: ""))
        maxStreamsPerUser = try environment.int("MAX_STREAMS_PER_USER", default: 10, in: 0...100_000)
        maxObserversPerUser = try environment.int("MAX_OBSERVERS_PER_USER", default: 20, in: 0...100_000)
        maxGenerationsPerUser = try environment.int("MAX_GENERATIONS_PER_USER", default: 5, in: 0...100_000)
        queueMaxWaiting = try environment.int("QUEUE_MAX_WAITING", default: 2_000, in: 0...10_000_000)
        httpIdleTimeout = try environment.milliseconds("HTTP_IDLE_TIMEOUT_MS", default: .seconds(60), in: 100...3_600_000)
        cors = try CORSPolicy(parsing: environment.string("CORS_ALLOWED_ORIGINS", default: ""))
        webSockets = try environment.bool("WEBSOCKETS_ENABLED", default: true)
        consoleAuthURL = environment.string("CONSOLE_AUTH_URL", default: environment.string("AUTH_URL", default: ""))
        consoleAccountingURL = environment.string("CONSOLE_ACCOUNTING_URL", default: accountingURL)
        for (name, url) in [("CONSOLE_AUTH_URL", consoleAuthURL), ("CONSOLE_ACCOUNTING_URL", consoleAccountingURL)]
        where !url.isEmpty && !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw ConfigurationError("\(name) must be an http:// or https:// URL, or empty (got \(url))")
        }
    }
}

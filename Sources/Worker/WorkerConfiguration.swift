import Bedrock
import Catalog
import ChatCore
import ChatStore
import Foundation
import Queue

/// Everything chat-worker reads from its environment, validated at start.
struct WorkerConfiguration: Sendable {
    var redis: RedisConfiguration
    var mongo: MongoConfiguration
    var queue: JobQueueConfiguration
    var processor: JobProcessorConfiguration
    /// Bedrock's region, endpoint (`BEDROCK_ENDPOINT`, the emulator locally) and timeouts.
    var bedrock: BedrockConfiguration
    /// The accounting service, for settling reservations.
    var accountingURL: String
    var accountingTimeout: Duration
    /// The credential sent with every accounting call (`ACCOUNTING_SERVICE_TOKEN`, optional, at least 32 bytes).
    var accountingServiceCredential: ServiceCredential?
    /// Calls to the accounting service in flight at once (`ACCOUNTING_MAX_CONNECTIONS`, 128); more wait for a connection.
    var accountingMaxConnections: Int
    /// The shared HS256 secret, to sign short-lived tokens for calls on a user's behalf.
    var jwtAccessSecret: String
    /// The longest reply asked of a model (capped by the model's own maximum).
    var maxOutputTokens: Int
    /// The models: the built-in catalog, or what `MODEL_CATALOG_PATH` makes of it.
    var catalog: ModelCatalog
    /// Tries of a model with a fallback before the fallback is called (`FALLBACK_AFTER_ATTEMPTS`, 2).
    var fallbackAttempts: Int
    /// How often a running reply makes its reservation again, extending it (`RESERVATION_RENEWAL_MS`, 5 min;
    /// keep it well under the accounting service's reservation lifetime).
    var reservationRenewal: Duration
    /// Where `/livez`, `/readyz` and `/metrics` are served (`WORKER_METRICS_HOST`, 0.0.0.0, and
    /// `WORKER_METRICS_PORT`, 3011; 0 takes a free port, for several workers on one machine).
    var metricsHost: String
    var metricsPort: Int

    /// Reads and checks the settings; a bad one throws a `ConfigurationError` with one clear line.
    init(environment: Environment) throws {
        redis = try RedisConfiguration(environment: environment)
        mongo = try MongoConfiguration(environment: environment, defaultURI: "mongodb://127.0.0.1:27018/chat")
        let visibility = try environment.milliseconds("JOB_VISIBILITY_TIMEOUT_MS", default: .seconds(5), in: 300...3_600_000)
        let stream = environment.string("JOB_STREAM", default: "chat:jobs")
        queue = JobQueueConfiguration(
            stream: stream, deadLetterStream: stream + ":dead", visibilityTimeout: visibility,
            maxAttempts: try environment.int("JOB_MAX_ATTEMPTS", default: 3, in: 1...100)
        )
        let consumer = environment.string(
            "WORKER_CONSUMER_NAME",
            default: "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
        )
        processor = JobProcessorConfiguration(
            consumer: consumer,
            concurrency: try environment.int("WORKER_CONCURRENCY", default: 64, in: 1...10_000),
            visibilityTimeout: visibility,
            drainTimeout: try environment.milliseconds("WORKER_DRAIN_TIMEOUT_MS", default: .seconds(25), in: 0...3_600_000)
        )
        bedrock = BedrockConfiguration(
            region: environment.string("AWS_REGION", default: environment.string("AWS_DEFAULT_REGION", default: "us-east-1")),
            endpoint: environment["BEDROCK_ENDPOINT"],
            connectTimeout: try environment.milliseconds("BEDROCK_CONNECT_TIMEOUT_MS", default: .seconds(5)),
            firstByteTimeout: try environment.milliseconds("BEDROCK_FIRST_BYTE_TIMEOUT_MS", default: .seconds(60)),
            chunkTimeout: try environment.milliseconds("BEDROCK_CHUNK_TIMEOUT_MS", default: .seconds(30)),
            maxAttempts: try environment.int("BEDROCK_MAX_ATTEMPTS", default: 4, in: 1...10)
        )
        // One connection per stream in flight: never fewer than the jobs this worker runs at once.
        bedrock.maxConnections = max(bedrock.maxConnections, processor.concurrency)
        if let endpoint = bedrock.endpoint, !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
            throw ConfigurationError("BEDROCK_ENDPOINT must be an http:// or https:// URL (got \(endpoint))")
        }
        accountingURL = environment.string("ACCOUNTING_URL", default: "http://127.0.0.1:3001")
        accountingTimeout = try environment.milliseconds("ACCOUNTING_TIMEOUT_MS", default: .seconds(3))
        accountingServiceCredential = try ServiceCredential.from(environment)
        accountingMaxConnections = try environment.int("ACCOUNTING_MAX_CONNECTIONS", default: 128, in: 1...10_000)
        jwtAccessSecret = try AccessTokenVerifier.secret(from: environment)
        try PublishedSecrets.refuse(jwtAccessSecret, setting: "JWT_ACCESS_SECRET", in: environment)
        maxOutputTokens = try environment.int("GENERATION_MAX_TOKENS", default: 1_024, in: 1...200_000)
        catalog = try ModelCatalog.load(environment: environment)
        fallbackAttempts = try environment.int("FALLBACK_AFTER_ATTEMPTS", default: 2, in: 1...10)
        reservationRenewal = try environment.milliseconds("RESERVATION_RENEWAL_MS", default: .seconds(300), in: 100...86_400_000)
        metricsHost = environment.string("WORKER_METRICS_HOST", default: "0.0.0.0")
        metricsPort = try environment.int("WORKER_METRICS_PORT", default: 3011, in: 0...65_535)
    }
}

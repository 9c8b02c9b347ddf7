import Accounting
import AsyncHTTPClient
import Bedrock
import ChatCore
import ChatState
import ChatStore
import Foundation
import Logging
import Queue
import ServiceLifecycle
import Telemetry

/// Builds chat-worker's `ServiceGroup`: the Redis client and the store first, the job processor last, so that
/// on SIGTERM the processor drains before its clients close.
func buildWorker(configuration: WorkerConfiguration) async throws -> ServiceGroup {
    let logger = Logger(label: "chat-worker")
    let redis = RedisClient(configuration: configuration.redis, logger: Logger(label: "chat-worker.redis"))
    let store = try MongoSessionStore(configuration: configuration.mongo, logger: Logger(label: "chat-worker.mongo"))
    do {
        try await store.prepare()
    } catch {
        logger.warning("could not create the database indexes at start", metadata: ["error": "\(error)"])
    }
    let queue = JobQueue<InferenceJob>(redis: redis, configuration: configuration.queue)
    let bedrockHTTP = BedrockClient.makeHTTPClient(configuration: configuration.bedrock)
    let accountingHTTP = AccountingClient.makeHTTPClient(maxConnections: configuration.accountingMaxConnections)
    let ledger = AccountingClient(
        baseURL: configuration.accountingURL, httpClient: accountingHTTP, timeout: configuration.accountingTimeout,
        serviceCredential: configuration.accountingServiceCredential,
        logger: Logger(label: "chat-worker.accounting")
    )
    let signer = UserTokenSigner(try AccessTokenVerifier(secret: configuration.jwtAccessSecret))
    ChatMetrics.prepareWorker(catalog: configuration.catalog)
    var pending = PendingSettlements(redis: redis, ledger: ledger, signer: signer, interval: .seconds(10), logger: logger)
    pending.catalog = configuration.catalog
    let cache = SessionCache(redis: redis, maxHistoryBytes: SessionCache.maxHistoryBytes(for: configuration.catalog))
    let state = GenerationState(redis: redis, cache: cache)
    let running = RunningJobs(redis: redis, state: state, logger: logger)
    var handler = GenerationHandler(
        generator: BedrockClient(
            configuration: configuration.bedrock, credentials: CredentialChain.standard(httpClient: bedrockHTTP), httpClient: bedrockHTTP,
            logger: Logger(label: "chat-worker.bedrock")
        ),
        store: store, state: state, cache: cache,
        ledger: ledger, signer: signer, pending: pending, running: running,
        maxOutputTokens: configuration.maxOutputTokens, maxAttempts: configuration.queue.maxAttempts, logger: logger
    )
    handler.reservationRenewal = configuration.reservationRenewal
    handler.catalog = configuration.catalog
    handler.fallbackAttempts = configuration.fallbackAttempts
    let processor = JobProcessor(queue: queue, handler: handler, configuration: configuration.processor, logger: logger)
    let sweeper = JobSweeper(state: state, store: store, stream: configuration.queue.stream, group: configuration.queue.group, logger: logger)
    let turns = PendingTurns(state: state, store: store, logger: logger)
    let health = HealthServer.application(host: configuration.metricsHost, port: configuration.metricsPort, redis: redis, logger: logger)
    let spans = try TraceExport.start(serviceName: "chat-worker", environment: ProcessInfo.processInfo.environment, logger: logger)
    return ServiceGroup(
        configuration: .init(
            services: (spans.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? []) + [
                .init(service: health),
                .init(service: redis),
                .init(service: StoreService(store: store)),
                .init(service: HTTPClientService(client: bedrockHTTP)),
                .init(service: HTTPClientService(client: accountingHTTP)),
                .init(service: pending),
                .init(service: running),
                .init(service: sweeper),
                .init(service: turns),
                .init(service: processor, successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
}

import Accounting
import AsyncHTTPClient
import CORS
import ChatCore
import ChatState
import ChatStore
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import NIOCore
import Logging
import Queue
import Telemetry

/// What the routes need; tests build it from their own Redis and store.
struct APIDependencies: Sendable {
    var redis: RedisClient
    var store: any SessionStore
    var verifier: AccessTokenVerifier
    var healthTimeout: Duration
    var rateLimiter: RateLimiter
    var ledger: any CreditLedger
    var state: GenerationState
    var cache: SessionCache
    var queue: JobQueue<InferenceJob>
    var events: SessionEvents
    /// The process's one reader of session events; a service of the application.
    var hub: EventHub
    /// The longest reply asked of a model; reservations cover it.
    var maxOutputTokens: Int = 1_024
    /// How long `POST /messages` waits for a reply.
    var messageWait: Duration = .seconds(120)
    /// Proxies whose `X-Forwarded-For` names the client.
    var trustedProxies = try! TrustedProxies(parsing: "")
    /// The per-user caps on open streams (none when nil).
    var streamLimits: StreamLimits? = nil
    /// The cap on jobs waiting for a worker (none when nil).
    var backlog: BacklogGate? = nil
    /// The origins whose pages may call the API (none by default).
    var cors = try! CORSPolicy(parsing: "")
    /// The auth and accounting services as the console's browser reaches them (none by default).
    var consoleAuthURL = ""
    var consoleAccountingURL = ""
    /// The models offered.
    var catalog: ModelCatalog = .builtIn
}

/// Builds chat-api: the Redis client and the MongoDB store as services of its `ServiceGroup`, the router, the
/// server. The database's indexes are created before the server starts.
func buildApplication(configuration: APIConfiguration) async throws -> some ApplicationProtocol {
    let logger = Logger(label: "chat-api")
    let redis = RedisClient(configuration: configuration.redis, logger: Logger(label: "chat-api.redis"))
    let store = try MongoSessionStore(configuration: configuration.mongo, logger: Logger(label: "chat-api.mongo"))
    do {
        try await store.prepare()
    } catch {
        logger.warning("could not create the database indexes at start; /readyz reports the database", metadata: ["error": "\(error)"])
    }
    let httpClient = AccountingClient.makeHTTPClient(maxConnections: configuration.accountingMaxConnections)
    let ledger = AccountingClient(
        baseURL: configuration.accountingURL, httpClient: httpClient, timeout: configuration.accountingTimeout,
        serviceCredential: configuration.accountingServiceCredential,
        logger: Logger(label: "chat-api.accounting")
    )
    let events = SessionEvents(redis: redis)
    let cache = SessionCache(redis: redis, maxHistoryBytes: SessionCache.maxHistoryBytes(for: configuration.catalog))
    let hub = EventHub(
        redis: redis, events: events, configuration: EventHub.Configuration(heartbeatInterval: configuration.heartbeatInterval),
        logger: Logger(label: "chat-api.events")
    )
    var dependencies = APIDependencies(
        redis: redis, store: store,
        verifier: try AccessTokenVerifier(secret: configuration.jwtAccessSecret),
        healthTimeout: configuration.healthTimeout,
        rateLimiter: RateLimiter(redis: redis, settings: configuration.rateLimits, logger: Logger(label: "chat-api.ratelimit")),
        ledger: ledger,
        // A job begun here is enqueued after its reservation (one accounting call, retried once at most): the
        // sweeper waits well past that before it ends a job that was never enqueued.
        state: GenerationState(
            redis: redis, cache: cache, enqueueGrace: max(.seconds(30), configuration.accountingTimeout * 2 + .seconds(10)),
            queueTimeout: configuration.queueTimeout, maxJobsPerUser: configuration.maxGenerationsPerUser
        ),
        cache: cache,
        queue: JobQueue<InferenceJob>(
            redis: redis, configuration: JobQueueConfiguration(stream: configuration.jobStream, deadLetterStream: configuration.jobStream + ":dead")
        ),
        events: events,
        hub: hub,
        maxOutputTokens: configuration.maxOutputTokens,
        messageWait: configuration.messageWait,
        trustedProxies: configuration.trustedProxies
    )
    dependencies.streamLimits = StreamLimits(
        slots: UserSlots(redis: redis, lease: max(.seconds(30), configuration.heartbeatInterval * 4)),
        maxStreams: configuration.maxStreamsPerUser, maxObservers: configuration.maxObserversPerUser
    )
    dependencies.backlog = BacklogGate(queue: dependencies.queue, maxWaiting: configuration.queueMaxWaiting)
    dependencies.cors = configuration.cors
    dependencies.consoleAuthURL = configuration.consoleAuthURL
    dependencies.consoleAccountingURL = configuration.consoleAccountingURL
    dependencies.catalog = configuration.catalog
    ChatMetrics.prepareAPI(rateLimitPolicies: RateLimitClass.allCases.map(\.rawValue) + ["streams", "observers", "queue-full"], catalog: configuration.catalog)
    do {
        try await dependencies.queue.prepare()
    } catch {
        logger.warning("could not create the job queue's consumer group at start", metadata: ["error": "\(error)"])
    }
    let routes = buildRoutes(dependencies)
    if !configuration.webSockets { routes.webSockets = nil }
    var app = Application(
        router: MeteredRouter(routes.router),
        server: serverBuilder(routes, idleTimeout: configuration.httpIdleTimeout, pingInterval: configuration.heartbeatInterval),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "chat-api"),
        logger: logger
    )
    let sweeper = JobSweeper(
        state: dependencies.state, store: store, stream: dependencies.queue.configuration.stream, group: dependencies.queue.configuration.group,
        logger: Logger(label: "chat-api.sweeper")
    )
    // The hub comes after the Redis client, so it stops (ending every relay) before the client closes.
    app.addServices(redis, StoreService(store: store), HTTPClientService(client: httpClient), hub, sweeper)
    if let spans = try TraceExport.start(serviceName: "chat-api", environment: ProcessInfo.processInfo.environment, logger: logger) {
        app.addServices(spans)
    }
    return app
}

/// HTTP/1.1 with the WebSocket upgrades of `routes.webSockets`, pinging each socket every `pingInterval`.
func serverBuilder(_ routes: RouteTable<ChatRequestContext>, idleTimeout: Duration, pingInterval: Duration) -> HTTPServerBuilder {
    // The decoder takes request heads up to 512 KiB, so that HeaderLimitMiddleware answers an oversized one
    // with a JSON 414 or 431; past that the connection is closed with a bare 400.
    let http1 = HTTP1Channel.Configuration(
        idleTimeout: TimeAmount.nanoseconds(idleTimeout.nanoseconds),
        httpDecoderConfiguration: .init(maxHeaderFieldSize: 512 * 1024, maxHeaderListSize: 512 * 1024, maxHeaderFieldCount: 200)
    )
    guard let webSockets = routes.webSockets else { return .http1(configuration: http1) }
    let sockets = webSockets.buildResponder()
    let configuration = HTTP1WebSocketUpgradeChannel.Configuration(
        http1: http1, ws: .init(maxFrameSize: 16 * 1024, autoPing: .enabled(timePeriod: pingInterval), closeTimeout: .seconds(5))
    )
    return HTTPServerBuilder { responder in
        GuardedConnection(
            base: HTTP1WebSocketUpgradeChannel(responder: responder, webSocketResponder: sockets, configuration: configuration),
            timeout: TimeAmount.nanoseconds(idleTimeout.nanoseconds)
        )
    }
}

/// The routes of chat-api, behind the request-id and error middleware; `/api/chat` behind authentication.
func buildRouter(_ dependencies: APIDependencies) -> Router<ChatRequestContext> {
    buildRoutes(dependencies).router
}

/// The router of `buildRouter` with the list of the routes it serves.
func buildRoutes(_ dependencies: APIDependencies) -> RouteTable<ChatRequestContext> {
    let router = RouteTable(Router(context: ChatRequestContext.self))
    router.add(middleware: RequestIDMiddleware())
    // Before everything that may refuse a request, so that a page can read why it was refused.
    router.add(middleware: CORSMiddleware(policy: dependencies.cors))
    router.add(middleware: ErrorMiddleware())
    router.add(middleware: HeaderLimitMiddleware())
    router.add(middleware: ClientAddressMiddleware(trusted: dependencies.trustedProxies))
    // Probes and scrapes are not clients: they never use up, or get refused by, the per-IP limit; nor do the
    // console's static files (a page load fetches a dozen, from memory).
    router.add(middleware: RateLimitMiddleware(limiter: dependencies.rateLimiter) { request in
        let path = request.uri.path
        return ["/livez", "/readyz", "/metrics", "/", "/console"].contains(path) || path.hasPrefix("/console/") ? nil : .ip
    })
    HealthController(redis: dependencies.redis, store: dependencies.store, timeout: dependencies.healthTimeout).register(on: router)
    // The queue's backlog is read when Prometheus scrapes: chat-api answers even when no worker runs.
    router.addMetricsRoute { [queue = dependencies.queue] in
        do {
            let backlog = try await queue.backlog()
            ChatMetrics.backlog(waiting: backlog.waiting, pending: backlog.pending, oldestJobAge: backlog.oldestJobAge, deadLetters: backlog.deadLetters)
        } catch {
            ChatMetrics.backlogUnreadable()
        }
    }
    let chat = router.group("/api/chat")
        .add(middleware: AuthenticationMiddleware(verifier: dependencies.verifier))
        .add(middleware: RateLimitMiddleware(limiter: dependencies.rateLimiter, classify: RateLimitMiddleware.chatClass))
    let starter = GenerationStarter(
        store: dependencies.store, state: dependencies.state, cache: dependencies.cache, queue: dependencies.queue,
        ledger: dependencies.ledger, maxOutputTokens: dependencies.maxOutputTokens, backlog: dependencies.backlog, catalog: dependencies.catalog
    )
    let limits = dependencies.streamLimits ?? StreamLimits(slots: UserSlots(redis: dependencies.redis), maxStreams: 0, maxObservers: 0)
    let relay = EventRelay(hub: dependencies.hub, events: dependencies.events, state: dependencies.state, cache: dependencies.cache)
    let observe = ObserveController(
        store: dependencies.store, state: dependencies.state, relay: relay, limits: limits, defaultModelID: dependencies.catalog.defaultModelID
    )
    observe.register(on: chat)
    SessionController(store: dependencies.store, ledger: dependencies.ledger, state: dependencies.state, cache: dependencies.cache, starter: starter)
        .register(on: chat)
    let models = router.group("/api/models")
        .add(middleware: AuthenticationMiddleware(verifier: dependencies.verifier))
        .add(middleware: RateLimitMiddleware(limiter: dependencies.rateLimiter, classify: RateLimitMiddleware.chatClass))
    ModelController(catalog: dependencies.catalog).register(on: models)
    let jobs = router.group("/api/jobs")
        .add(middleware: AuthenticationMiddleware(verifier: dependencies.verifier))
        .add(middleware: RateLimitMiddleware(limiter: dependencies.rateLimiter, classify: RateLimitMiddleware.chatClass))
    let generation = GenerationController(
        starter: starter, relay: relay, state: dependencies.state, store: dependencies.store, messageWait: dependencies.messageWait, limits: limits
    )
    generation.register(on: chat, jobs: jobs)
    // A completion opens a session as well as a generation: it counts against both limits.
    let openAI = router.group("/v1")
        .add(middleware: AuthenticationMiddleware(verifier: dependencies.verifier))
        .add(middleware: RateLimitMiddleware(limiter: dependencies.rateLimiter, classify: RateLimitMiddleware.chatClass))
        .add(middleware: RateLimitMiddleware(limiter: dependencies.rateLimiter) { request in
            request.method == .post && RateLimitMiddleware.isCompletion(request.uri.path) ? .sessionCreate : nil
        })
    OpenAIController(
        starter: starter, relay: relay, store: dependencies.store, cache: dependencies.cache, messageWait: dependencies.messageWait, limits: limits
    ).register(on: openAI)
    OpenAPIController().register(on: router)
    ConsoleController(authURL: dependencies.consoleAuthURL, accountingURL: dependencies.consoleAccountingURL).register(on: router)

    // The WebSocket forms of the event streams, on a router of their own that sees only upgrade requests (any
    // other request asking for an upgrade gets a bare 400).
    let sockets = Router(context: ChatRequestContext.self)
    sockets.add(middleware: RequestIDMiddleware())
    WebSocketController(
        observe: observe, generation: generation,
        admission: [
            ClientAddressMiddleware(trusted: dependencies.trustedProxies),
            RateLimitMiddleware(limiter: dependencies.rateLimiter) { _ in .ip },
            AuthenticationMiddleware(verifier: dependencies.verifier),
            RateLimitMiddleware(limiter: dependencies.rateLimiter, classify: RateLimitMiddleware.chatClass),
        ],
        cors: dependencies.cors
    ).register(on: sockets)
    router.webSockets = sockets
    return router
}

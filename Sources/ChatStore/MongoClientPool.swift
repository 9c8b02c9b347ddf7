@preconcurrency import CMongoc
import ChatCore
import Logging
import NIOPosix
import Synchronization

/// The process's connections to one MongoDB deployment: a `mongoc_client_pool_t` and the
/// sized `NIOThreadPool` on which every blocking libmongoc call runs.
///
/// `@unchecked Sendable` because it holds C pointers, and it is safe because:
/// - `mongoc_client_pool_t` is documented thread-safe for `pop`, `try_pop` and `push`;
/// - a popped `mongoc_client_t` (not thread-safe) is used by exactly one pool thread, for one
///   operation, and pushed back before that thread takes other work;
/// - the pool's maximum size equals the thread count, so a thread never waits for a client;
/// - the C pool is destroyed only after the threads are joined (`shutdown()`) or when no
///   operation can hold this object any more (`deinit`), so no call can race its destruction.
package final class MongoClientPool: @unchecked Sendable {
    /// The database named in the URI, or `chat`.
    package let databaseName: String
    private let pool: OpaquePointer
    private let threads: NIOThreadPool
    private let logger: Logger
    private let state = Mutex(State.running)

    private enum State { case running, shuttingDown, closed }

    /// What every call returns once the pool is shut down, or when MongoDB cannot be reached.
    package static let unavailable = ChatError(.unavailable, code: "DATABASE_UNAVAILABLE", message: "The database is unavailable")

    /// Connects lazily (libmongoc connects on first use) and starts the threads; throws on a malformed URI.
    package init(configuration: MongoConfiguration, logger: Logger) throws {
        guard configuration.threadCount >= 1, configuration.timeout > .zero else {
            throw ChatError(.internal, code: "DATABASE_CONFIGURATION", message: "The MongoDB timeout and thread count must be positive")
        }
        _ = MongocRuntime.initialized
        var error = bson_error_t()
        guard let uri = mongoc_uri_new_with_error(configuration.uri, &error) else {
            // The driver's message may quote the URI, password included: log only its code.
            logger.error("MONGO_URI is not a valid MongoDB URI", metadata: ["code": "\(error.code)"])
            throw ChatError(.internal, code: "DATABASE_CONFIGURATION", message: "MONGO_URI is not a valid MongoDB URI")
        }
        // The pool copies the URI, so ours is freed whatever happens next.
        defer { mongoc_uri_destroy(uri) }
        for option in [MONGOC_URI_SERVERSELECTIONTIMEOUTMS, MONGOC_URI_CONNECTTIMEOUTMS, MONGOC_URI_SOCKETTIMEOUTMS]
        where !mongoc_uri_has_option(uri, option) {
            _ = mongoc_uri_set_option_as_int32(uri, option, configuration.timeoutMilliseconds)
        }
        // mongoc_uri_get_database returns a pointer into `uri` (or nil): copied before `uri` goes.
        databaseName = mongoc_uri_get_database(uri).map { String(cString: $0) } ?? "chat"

        guard let pool = mongoc_client_pool_new_with_error(uri, &error) else {
            let driverError = MongoDriverError(error)
            logger.error("MongoDB client pool could not be created", metadata: ["error": "\(driverError)"])
            throw ChatError(.internal, code: "DATABASE_CONFIGURATION", message: "The MongoDB client could not be configured")
        }
        // Version 2 reports server errors in MONGOC_ERROR_SERVER, which `MongoDriverError` relies on.
        _ = mongoc_client_pool_set_error_api(pool, Int32(MONGOC_ERROR_API_VERSION_2))
        mongoc_client_pool_max_size(pool, UInt32(configuration.threadCount))
        self.pool = pool
        self.logger = logger
        threads = NIOThreadPool(numberOfThreads: configuration.threadCount)
        threads.start()
    }

    deinit {
        // Every pending operation retains `self`, so none can be running here. Only reached
        // without `shutdown()` if the owner forgot it; the threads then idle until exit.
        if state.withLock({ $0 }) == .running { mongoc_client_pool_destroy(pool) }
    }

    /// When an operation that failed for want of the database is tried once more.
    package enum Retry: Sendable {
        /// Never (an operation of several commands, where a later one may fail after an earlier one took effect).
        case never
        /// Only when its request never reached the server (it failed while being sent: a pooled connection the
        /// server had closed), so it cannot have had an effect; for operations of one command.
        case ifNotSent
        /// After any failure of its connection (not when no server could be selected: that is an outage, and a
        /// second try would only double the wait): running it twice has the effect of running it once.
        case idempotent
    }

    /// Runs `body` on a pool thread with a client of its own; driver failures become a `ChatError`
    /// (`DATABASE_UNAVAILABLE` when MongoDB cannot be reached), their details go to the log. A failure that
    /// `retry` allows is tried once more at once (the driver has dropped the broken connection and opens a new
    /// one), so a connection the server closed meanwhile costs a round trip, not the user's request.
    package func withClient<T: Sendable>(
        _ operation: String, retry: Retry = .never, _ body: @escaping @Sendable (_ client: OpaquePointer) throws -> T
    ) async throws -> T {
        guard state.withLock({ $0 }) == .running else { throw Self.unavailable }
        do {
            return try await threads.runIfActive {
                // try_pop never blocks; pop could, but cannot here: at most `threadCount` clients
                // are ever out (one per thread) and the pool may hold that many.
                let client: OpaquePointer = mongoc_client_pool_try_pop(self.pool) ?? mongoc_client_pool_pop(self.pool)
                defer { mongoc_client_pool_push(self.pool, client) }
                do {
                    return try body(client)
                } catch let error as MongoDriverError where error.allowsRetry(retry) {
                    self.logger.warning(
                        "MongoDB operation failed; trying it once more",
                        metadata: ["operation": "\(operation)", "domain": "\(error.domain)", "code": "\(error.code)", "error": "\(error.message)"]
                    )
                    ChatMetrics.databaseRetry(operation: operation)
                    return try body(client)
                }
            }
        } catch let error as MongoDriverError {
            logger.error(
                "MongoDB operation failed",
                metadata: ["operation": "\(operation)", "domain": "\(error.domain)", "code": "\(error.code)", "error": "\(error.message)"]
            )
            throw error.chatError
        } catch is CancellationError where state.withLock({ $0 }) != .running {
            // The thread pool cancels queued work when it shuts down.
            throw Self.unavailable
        }
    }

    /// Stops the threads (waiting for running calls) and closes every connection; later calls fail.
    package func shutdown() async throws {
        let first = state.withLock { state in
            guard state == .running else { return false }
            state = .shuttingDown
            return true
        }
        guard first else { return }
        try await threads.shutdownGracefully()
        // The threads are joined: nothing uses the pool or a client any more.
        mongoc_client_pool_destroy(pool)
        state.withLock { $0 = .closed }
    }
}

/// libmongoc's process-wide setup, done once.
private enum MongocRuntime {
    /// Logs what libmongoc itself reports through swift-log instead of stderr.
    static let driverLogger = Logger(label: "mongoc")

    /// Touch to initialize libmongoc; Swift runs a static's initializer exactly once, thread-safely.
    static let initialized: Void = {
        // The handler comes first: mongoc_init itself may warn.
        // A C function pointer: the closure captures nothing (it reads a static) and copies the
        // C strings before returning, as libmongoc only lends them for the call.
        mongoc_log_set_handler({ level, domain, message, _ in
            let text = message.map { String(cString: $0) } ?? ""
            let metadata: Logger.Metadata = ["domain": "\(domain.map { String(cString: $0) } ?? "")"]
            switch level {
            case MONGOC_LOG_LEVEL_ERROR, MONGOC_LOG_LEVEL_CRITICAL:
                MongocRuntime.driverLogger.error("\(text)", metadata: metadata)
            case MONGOC_LOG_LEVEL_WARNING:
                MongocRuntime.driverLogger.warning("\(text)", metadata: metadata)
            case MONGOC_LOG_LEVEL_MESSAGE, MONGOC_LOG_LEVEL_INFO:
                MongocRuntime.driverLogger.info("\(text)", metadata: metadata)
            case MONGOC_LOG_LEVEL_DEBUG:
                MongocRuntime.driverLogger.debug("\(text)", metadata: metadata)
            default:
                MongocRuntime.driverLogger.trace("\(text)", metadata: metadata)
            }
        }, nil)
        mongoc_init()
    }()
}

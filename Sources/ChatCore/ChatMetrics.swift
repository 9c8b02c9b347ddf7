import Metrics
import Synchronization

/// Every metric chat-api and chat-worker export, in one place: names in Prometheus style (`chat_` prefix, units
/// in the name, `_total` on counters) and only bounded labels (a model from the catalog, an outcome, a policy, a
/// known exception name), never a user, session or job id. They are recorded through swift-metrics; each process
/// chooses the backend at start (Prometheus, see the Telemetry module). `docs/operations.md` lists them with what
/// they mean.
public enum ChatMetrics {
    // MARK: Series at zero from the start

    /// Creates chat-api's series at zero for every model of the catalog and every known label value, so that
    /// dashboards and alerts see a flat line rather than no data before the first event (Prometheus's advice).
    public static func prepareAPI(rateLimitPolicies: [String], catalog: ModelCatalog) {
        knownModels.withLock { $0 = Set(catalog.models.map(\.id)) }
        for model in catalog.models.map(\.id) {
            _ = Counter(label: "chat_jobs_enqueued_total", dimensions: [("model", modelLabel(model))])
            _ = FloatingPointCounter(label: "chat_credits_reserved_total", dimensions: [("model", modelLabel(model))])
        }
        for policy in rateLimitPolicies { _ = Counter(label: "chat_rate_limit_rejections_total", dimensions: [("policy", policy)]) }
        prepareAccounting(operations: ["reserve", "balance", "finalize"])
        for kind in ["reply", "observer"] { Meter(label: "chat_sse_streams_open", dimensions: [("kind", kind)]).set(0) }
    }

    /// Creates chat-worker's series at zero, as `prepareAPI` does for chat-api.
    public static func prepareWorker(catalog: ModelCatalog) {
        knownModels.withLock { $0 = Set(catalog.models.map(\.id)) }
        for model in catalog.models.map(\.id) {
            _ = Counter(label: "chat_jobs_started_total", dimensions: [("model", modelLabel(model))])
            for outcome in ["completed", "cancelled", "failed"] {
                _ = Counter(label: "chat_jobs_finished_total", dimensions: [("model", modelLabel(model)), ("outcome", outcome)])
            }
            for direction in ["input", "output"] { _ = Counter(label: "chat_tokens_total", dimensions: [("model", modelLabel(model)), ("direction", direction)]) }
            _ = FloatingPointCounter(label: "chat_credits_charged_total", dimensions: [("model", modelLabel(model))])
            _ = FloatingPointCounter(label: "chat_credits_refunded_total", dimensions: [("model", modelLabel(model))])
        }
        _ = Counter(label: "chat_jobs_reclaimed_total")
        _ = Counter(label: "chat_jobs_dead_lettered_total")
        _ = Counter(label: "chat_settlements_parked_total")
        for reason in settlementMismatchReasons { _ = Counter(label: "chat_settlement_mismatches_total", dimensions: [("reason", reason)]) }
        for exception in ["ThrottlingException", "ServiceUnavailableException", "ModelNotReadyException", "ValidationException"] {
            _ = Counter(label: "chat_bedrock_errors_total", dimensions: [("exception", exception)])
            _ = Counter(label: "chat_bedrock_retries_total", dimensions: [("exception", exception)])
        }
        prepareAccounting(operations: ["finalize", "reserve"])
    }

    private static func prepareAccounting(operations: [String]) {
        for operation in operations {
            for outcome in ["ok", "refused", "unavailable"] {
                _ = Counter(label: "chat_accounting_calls_total", dimensions: [("operation", operation), ("outcome", outcome)])
            }
        }
    }

    /// A model id as a label: a model of the catalog, else `unknown`, so a malformed job cannot add series.
    static func modelLabel(_ id: String) -> String {
        knownModels.withLock { $0.contains(id) } ? id : "unknown"
    }

    /// The ids of the process's catalog, set by `prepareAPI` or `prepareWorker` (the built-in ones until then).
    private static let knownModels = Mutex<Set<String>>(Set(ModelCatalog.builtIn.models.map(\.id)))

    // MARK: Jobs

    /// A job entered the queue (chat-api).
    public static func jobEnqueued(model: String) {
        Counter(label: "chat_jobs_enqueued_total", dimensions: [("model", modelLabel(model))]).increment()
    }

    /// A worker began an attempt of a job (every attempt counts, so a retried job counts more than once).
    public static func jobStarted(model: String) {
        Counter(label: "chat_jobs_started_total", dimensions: [("model", modelLabel(model))]).increment()
    }

    /// How a job's run ended: `completed`, `failed`, `cancelled` (or `abandoned`: the worker lost the job to
    /// another attempt); and how long it ran, from pick-up to its end.
    public static func jobFinished(model: String, outcome: String, duration: Duration) {
        Counter(label: "chat_jobs_finished_total", dimensions: [("model", modelLabel(model)), ("outcome", outcome)]).increment()
        Timer(label: "chat_job_duration_seconds", dimensions: [("model", modelLabel(model)), ("outcome", outcome)], preferredDisplayUnit: .seconds)
            .recordNanoseconds(duration.nanoseconds)
    }

    /// From pick-up to the first chunk published.
    public static func timeToFirstToken(model: String, _ duration: Duration) {
        Timer(label: "chat_time_to_first_token_seconds", dimensions: [("model", modelLabel(model))], preferredDisplayUnit: .seconds)
            .recordNanoseconds(duration.nanoseconds)
    }

    /// Tokens a finished job billed, by direction (`input`, `output`).
    public static func tokens(model: String, input: Int, output: Int) {
        if input > 0 { Counter(label: "chat_tokens_total", dimensions: [("model", modelLabel(model)), ("direction", "input")]).increment(by: input) }
        if output > 0 { Counter(label: "chat_tokens_total", dimensions: [("model", modelLabel(model)), ("direction", "output")]).increment(by: output) }
    }

    /// A job taken over from a worker that stopped renewing it.
    public static func jobReclaimed() {
        Counter(label: "chat_jobs_reclaimed_total").increment()
    }

    /// A job given up for good and moved to the dead-letter stream.
    public static func jobDeadLettered() {
        Counter(label: "chat_jobs_dead_lettered_total").increment()
    }

    // MARK: The queue (sampled when scraped)

    /// Jobs in the queue not yet handed to a worker (`waiting`) and handed but not finished (`pending`), the
    /// age of the oldest unfinished one, and the length of the dead-letter stream.
    public static func backlog(waiting: Int, pending: Int, oldestJobAge: Duration, deadLetters: Int) {
        Gauge(label: "chat_queue_up").record(1)
        Gauge(label: "chat_queue_jobs", dimensions: [("state", "waiting")]).record(waiting)
        Gauge(label: "chat_queue_jobs", dimensions: [("state", "pending")]).record(pending)
        Gauge(label: "chat_queue_oldest_job_age_seconds").record(Double(oldestJobAge.nanoseconds) / 1e9)
        Gauge(label: "chat_queue_dead_letters").record(deadLetters)
    }

    /// The backlog could not be read (Redis did not answer): `chat_queue_up` drops to 0 and the other queue
    /// gauges keep their last values, which an alert must not trust.
    public static func backlogUnreadable() {
        Gauge(label: "chat_queue_up").record(0)
    }

    // MARK: Bedrock

    /// A Bedrock call failed (after its retries, or not retried), by exception name.
    public static func bedrockError(exception: String) {
        Counter(label: "chat_bedrock_errors_total", dimensions: [("exception", BedrockExceptionName.bounded(exception))]).increment()
    }

    /// A Bedrock call was tried again after a retryable error.
    public static func bedrockRetry(exception: String) {
        Counter(label: "chat_bedrock_retries_total", dimensions: [("exception", BedrockExceptionName.bounded(exception))]).increment()
    }

    /// A model gave way to its fallback (throttled or not ready before its first chunk).
    public static func modelFallback(from: String, to: String) {
        Counter(label: "chat_model_fallbacks_total", dimensions: [("model", modelLabel(from)), ("fallback", modelLabel(to))]).increment()
    }

    // MARK: Credits

    /// Credits set aside for a job (chat-api).
    public static func creditsReserved(model: String, _ credits: Double) {
        FloatingPointCounter(label: "chat_credits_reserved_total", dimensions: [("model", modelLabel(model))]).increment(by: credits)
    }

    /// What a settlement charged and gave back.
    public static func creditsSettled(model: String, charged: Double, refunded: Double) {
        FloatingPointCounter(label: "chat_credits_charged_total", dimensions: [("model", modelLabel(model))]).increment(by: charged)
        FloatingPointCounter(label: "chat_credits_refunded_total", dimensions: [("model", modelLabel(model))]).increment(by: refunded)
    }

    /// Why a settlement disagreed with what the worker reported: `tokens` (the service settled the reservation
    /// with other token counts: someone else settled it first) or `undercharged` (it charged less than the
    /// reported tokens cost at the catalog's prices).
    public static let settlementMismatchReasons = ["tokens", "undercharged"]

    /// A settlement that disagreed with what the worker reported, by reason (`settlementMismatchReasons`).
    public static func settlementMismatch(reason: String) {
        Counter(label: "chat_settlement_mismatches_total", dimensions: [("reason", reason)]).increment()
    }

    /// A MongoDB operation tried once more after its connection failed, by operation.
    public static func databaseRetry(operation: String) {
        Counter(label: "chat_database_retries_total", dimensions: [("operation", operation)]).increment()
    }

    /// A settlement the accounting service could not take now, kept in Redis for the retry loop.
    public static func settlementParked() {
        Counter(label: "chat_settlements_parked_total").increment()
    }

    /// A call to the accounting service by operation (`reserve`, `finalize`, `balance`) and outcome (`ok`,
    /// `refused`: not enough credits or a duplicate, `unavailable`: unreachable, timed out or failing).
    public static func accountingCall(operation: String, outcome: String) {
        Counter(label: "chat_accounting_calls_total", dimensions: [("operation", operation), ("outcome", outcome)]).increment()
    }

    // MARK: chat-api

    /// A request refused by a rate limit, by policy (`ip`, `user`, `generation`...).
    public static func rateLimited(policy: String) {
        Counter(label: "chat_rate_limit_rejections_total", dimensions: [("policy", policy)]).increment()
    }

    /// An SSE stream opened (`+1`) or closed (`-1`), by kind: `reply` (a requester's stream) or `observer`.
    public static func sseStream(kind: String, delta: Int) {
        let meter = Meter(label: "chat_sse_streams_open", dimensions: [("kind", kind)])
        if delta >= 0 { meter.increment(by: Double(delta)) } else { meter.decrement(by: Double(-delta)) }
    }
}

/// The Bedrock exception names a metric label may carry; anything else counts as `other`, so that a label's
/// values stay bounded whatever an endpoint answers.
public enum BedrockExceptionName {
    static let known: Set<String> = [
        "ThrottlingException", "ModelNotReadyException", "ServiceUnavailableException", "InternalServerException",
        "ValidationException", "AccessDeniedException", "ResourceNotFoundException", "ModelTimeoutException",
        "ModelErrorException", "ModelStreamErrorException", "ServiceQuotaExceededException", "UnrecognizedClientException",
        "ExpiredTokenException", "ConnectionError", "CredentialsError", "InvalidEndpoint", "Timeout",
    ]

    /// `name` when it is one of the known exceptions, else `other`.
    public static func bounded(_ name: String) -> String { known.contains(name) ? name : "other" }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : product + attoseconds / 1_000_000_000
    }
}

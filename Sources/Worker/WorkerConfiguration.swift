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
    /// Pause between the placeholder handler's chunks (`ECHO_CHUNK_DELAY_MS`).
    var echoChunkDelay: Duration

    /// Reads and checks the settings; a bad one throws a `ConfigurationError` with one clear line.
    init(environment: Environment) throws {
        redis = try RedisConfiguration(url: environment.string("REDIS_URL", default: "redis://127.0.0.1:6380"))
        redis.commandTimeout = try environment.milliseconds("REDIS_COMMAND_TIMEOUT_MS", default: .seconds(5))
        mongo = MongoConfiguration(
            uri: environment.string("MONGO_URI", default: "mongodb://127.0.0.1:27018/chat"),
            timeout: try environment.milliseconds("MONGO_TIMEOUT_MS", default: .seconds(5)),
            threadCount: try environment.int("MONGO_THREADS", default: 4, in: 1...256)
        )
        let visibility = try environment.milliseconds("JOB_VISIBILITY_TIMEOUT_MS", default: .seconds(30), in: 300...3_600_000)
        queue = JobQueueConfiguration(
            visibilityTimeout: visibility,
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
        echoChunkDelay = try environment.milliseconds("ECHO_CHUNK_DELAY_MS", default: .milliseconds(20), in: 0...60_000)
    }
}

import Logging

/// The metadata of the work a task is doing (`requestId`, `userId`, `traceId` in chat-api; `jobId`, `sessionId`,
/// `userId`, `requestId`, `traceId` in chat-worker), added to every log line written inside it, whichever logger
/// writes it: `ProcessEntry` installs `provider` as the logging system's metadata provider.
public enum LogContext {
    /// The current task's log metadata.
    @TaskLocal public static var metadata: Logger.Metadata = [:]

    /// Reads `metadata` for every log line.
    public static let provider = Logger.MetadataProvider { metadata }

    /// Runs `body` with `extra` added to the task's log metadata.
    public static func with<T>(
        _ extra: Logger.Metadata, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T
    ) async rethrows -> T {
        try await $metadata.withValue(metadata.merging(extra) { $1 }, operation: body, isolation: isolation)
    }
}

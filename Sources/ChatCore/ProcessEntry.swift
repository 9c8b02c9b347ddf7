import Foundation
import Logging

/// How every executable of this project starts: logs to standard error at `LOG_LEVEL` (default `info`), one
/// JSON object per line (`JSONLogHandler`; `LOG_FORMAT=text` for swift-log's plain lines), each with the
/// task's `LogContext`; reads its configuration once (a bad setting: one line, exit code 2), then runs until it is done (an
/// error: one line, exit code 1).
public enum ProcessEntry {
    /// Bootstraps logging, builds the configuration with `configure`, and runs `run` with it.
    public static func start<Configuration>(
        _ name: String, isolation: isolated (any Actor)? = #isolation, configure: (Environment) throws -> Configuration,
        run: (Configuration) async throws -> Void
    ) async {
        // libmongoc's shared-memory counters serve only its `mongoc-stat` tool; where /dev/shm cannot take them it
        // prints a plain warning past any log handler. Off unless set otherwise, before any thread reads the
        // environment.
        setenv("MONGOC_DISABLE_SHM", "1", 0)
        let environment = ProcessInfo.processInfo.environment
        let level = Logger.Level(rawValue: environment["LOG_LEVEL"] ?? "info") ?? .info
        let text = environment["LOG_FORMAT"] == "text"
        LoggingSystem.bootstrap(
            { label, provider in
                if text {
                    var handler = StreamLogHandler.standardError(label: label, metadataProvider: provider)
                    handler.logLevel = level
                    return handler
                }
                var handler = JSONLogHandler(service: name, label: label, metadataProvider: provider)
                handler.logLevel = level
                return handler
            }, metadataProvider: LogContext.provider
        )
        let configuration: Configuration
        do {
            configuration = try configure(Environment())
        } catch {
            FileHandle.standardError.write(Data("\(name): configuration error: \(error)\n".utf8))
            exit(2)
        }
        do {
            try await run(configuration)
        } catch {
            FileHandle.standardError.write(Data("\(name): \(error)\n".utf8))
            exit(1)
        }
    }
}

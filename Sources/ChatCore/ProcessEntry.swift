import Foundation
import Logging

/// How every executable of this project starts: logs to standard error at `LOG_LEVEL` (default `info`),
/// reads its configuration once (a bad setting: one line, exit code 2), then runs until it is done (an
/// error: one line, exit code 1).
public enum ProcessEntry {
    /// Bootstraps logging, builds the configuration with `configure`, and runs `run` with it.
    public static func start<Configuration>(
        _ name: String, isolation: isolated (any Actor)? = #isolation, configure: (Environment) throws -> Configuration,
        run: (Configuration) async throws -> Void
    ) async {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info") ?? .info
            return handler
        }
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

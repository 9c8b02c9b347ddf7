import ChatCore
import Foundation
import Logging

/// chat-worker: consumes generation jobs, publishes their events, persists their messages.
@main
struct ChatWorker {
    static func main() async {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info") ?? .info
            return handler
        }
        let configuration: WorkerConfiguration
        do {
            configuration = try WorkerConfiguration(environment: Environment())
        } catch {
            FileHandle.standardError.write(Data("chat-worker: configuration error: \(error)\n".utf8))
            exit(2)
        }
        do {
            try await buildWorker(configuration: configuration).run()
        } catch {
            FileHandle.standardError.write(Data("chat-worker: \(error)\n".utf8))
            exit(1)
        }
    }
}

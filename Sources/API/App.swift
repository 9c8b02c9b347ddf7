import ChatCore
import Foundation
import Logging

/// chat-api: authenticates, validates, does session CRUD and (later) enqueues generations and relays their events.
@main
struct ChatAPI {
    static func main() async {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info") ?? .info
            return handler
        }
        let configuration: APIConfiguration
        do {
            configuration = try APIConfiguration(environment: Environment())
        } catch {
            FileHandle.standardError.write(Data("chat-api: configuration error: \(error)\n".utf8))
            exit(2)
        }
        do {
            let app = try await buildApplication(configuration: configuration)
            try await app.runService()
        } catch {
            FileHandle.standardError.write(Data("chat-api: \(error)\n".utf8))
            exit(1)
        }
    }
}

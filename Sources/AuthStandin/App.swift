import ChatCore
import Foundation
import Logging

/// auth-standin: the guide's auth service for development and tests. Logs in the five seed users, refreshes
/// with rotation, answers /me; shuts down gracefully on SIGTERM or SIGINT.
@main
struct AuthStandinApp {
    static func main() async {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info") ?? .info
            return handler
        }
        let configuration: AuthConfiguration
        do {
            configuration = try AuthConfiguration(environment: Environment())
        } catch {
            FileHandle.standardError.write(Data("auth-standin: configuration error: \(error)\n".utf8))
            exit(2)
        }
        do {
            let app = try await buildApplication(configuration: configuration)
            try await app.runService()
        } catch {
            FileHandle.standardError.write(Data("auth-standin: \(error)\n".utf8))
            exit(1)
        }
    }
}

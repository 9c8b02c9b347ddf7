import ChatCore
import Foundation
import Logging

/// accounting-standin: the guide's accounting service (credits, streaming reservations, usage) on MongoDB.
@main
struct AccountingStandin {
    static func main() async {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info") ?? .info
            return handler
        }
        let configuration: AccountingConfiguration
        do {
            configuration = try AccountingConfiguration(environment: Environment())
        } catch {
            FileHandle.standardError.write(Data("accounting-standin: configuration error: \(error)\n".utf8))
            exit(2)
        }
        do {
            let app = try await buildApplication(configuration: configuration)
            try await app.runService()
        } catch {
            FileHandle.standardError.write(Data("accounting-standin: \(error)\n".utf8))
            exit(1)
        }
    }
}

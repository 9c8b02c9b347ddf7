import ChatCore
import Foundation
import Logging

/// bedrock-emulator: a local Bedrock Runtime that verifies SigV4, answers deterministically and fails on request.
@main
struct BedrockEmulator {
    static func main() async {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info") ?? .info
            return handler
        }
        let configuration: EmulatorConfiguration
        do {
            configuration = try EmulatorConfiguration(environment: Environment())
        } catch {
            FileHandle.standardError.write(Data("bedrock-emulator: configuration error: \(error)\n".utf8))
            exit(2)
        }
        do {
            try await buildApplication(configuration: configuration).runService()
        } catch {
            FileHandle.standardError.write(Data("bedrock-emulator: \(error)\n".utf8))
            exit(1)
        }
    }
}

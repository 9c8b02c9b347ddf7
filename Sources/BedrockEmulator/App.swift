import ChatCore
import Telemetry

/// bedrock-emulator: a local Bedrock Runtime that verifies SigV4, answers deterministically and fails on request.
@main
struct BedrockEmulator {
    static func main() async {
        MetricsExport.bootstrap()
        await ProcessEntry.start("bedrock-emulator", configure: { try EmulatorConfiguration(environment: $0) }) {
            try await buildApplication(configuration: $0).runService()
        }
    }
}

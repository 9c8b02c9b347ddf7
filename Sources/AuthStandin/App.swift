import ChatCore
import Telemetry

/// auth-standin: the guide's auth service for development and tests. Logs in the five seed users, refreshes
/// with rotation, answers /me; shuts down gracefully on SIGTERM or SIGINT.
@main
struct AuthStandinApp {
    static func main() async {
        MetricsExport.bootstrap()
        await ProcessEntry.start("auth-standin", configure: { try AuthConfiguration(environment: $0) }) {
            try await buildApplication(configuration: $0).runService()
        }
    }
}

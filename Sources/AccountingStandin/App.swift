import ChatCore
import Telemetry

/// accounting-standin: the guide's accounting service (credits, streaming reservations, usage) on SQLite.
@main
struct AccountingStandin {
    static func main() async {
        MetricsExport.bootstrap()
        await ProcessEntry.start("accounting-standin", configure: { try AccountingConfiguration(environment: $0) }) {
            try await buildApplication(configuration: $0).runService()
        }
    }
}

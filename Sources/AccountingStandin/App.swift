import ChatCore

/// accounting-standin: the guide's accounting service (credits, streaming reservations, usage) on MongoDB.
@main
struct AccountingStandin {
    static func main() async {
        await ProcessEntry.start("accounting-standin", configure: { try AccountingConfiguration(environment: $0) }) {
            try await buildApplication(configuration: $0).runService()
        }
    }
}

import ChatCore

/// chat-api: authenticates, rate-limits, does session CRUD, reserves credits, enqueues generations and relays their events.
@main
struct ChatAPI {
    static func main() async {
        await ProcessEntry.start("chat-api", configure: { try APIConfiguration(environment: $0) }) {
            try await buildApplication(configuration: $0).runService()
        }
    }
}

import ChatCore

/// chat-worker: consumes generation jobs, publishes their events, persists their messages.
@main
struct ChatWorker {
    static func main() async {
        await ProcessEntry.start("chat-worker", configure: { try WorkerConfiguration(environment: $0) }) {
            try await buildWorker(configuration: $0).run()
        }
    }
}

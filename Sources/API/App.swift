import ChatCore
import NIOCore
import NIOPosix
import Telemetry

/// chat-api: authenticates, rate-limits, does session CRUD, reserves credits, enqueues generations and relays their events.
@main
struct ChatAPI {
    static func main() async {
        // Tasks run on the event loops that do the I/O, not on a second pool of threads handing work back and forth.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        MetricsExport.bootstrap()
        await ProcessEntry.start("chat-api", configure: { try APIConfiguration(environment: $0) }) {
            try await buildApplication(configuration: $0).runService()
        }
    }
}

import ChatCore
import NIOCore
import NIOPosix
import Telemetry

/// chat-worker: consumes generation jobs, publishes their events, persists their messages.
@main
struct ChatWorker {
    static func main() async {
        // Tasks run on the event loops that do the I/O, not on a second pool of threads handing work back and forth.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        MetricsExport.bootstrap()
        await ProcessEntry.start("chat-worker", configure: { try WorkerConfiguration(environment: $0) }) {
            try await buildWorker(configuration: $0).run()
        }
    }
}

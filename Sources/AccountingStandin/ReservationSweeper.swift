import Logging
import ServiceLifecycle

/// Every `interval`, refunds reservations past their deadline, drops expired allocations and archives
/// settled entries (`AccountStore.sweep`); on graceful shutdown it stops and closes the store.
struct ReservationSweeper: Service {
    let store: AccountStore
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    // A full batch may mean more is due: go on, a few batches at most, before sleeping.
                    for _ in 0..<10 {
                        guard try await store.sweep() == AccountStore.sweepBatch else { break }
                    }
                } catch is CancellationError {
                    break
                } catch {
                    logger.warning("sweep failed; retrying at the next interval", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
        try await store.shutdown()
    }
}

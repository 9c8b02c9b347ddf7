import ChatCore
import NIOConcurrencyHelpers
import Queue

/// Refuses new generations while the job queue holds `maxWaiting` jobs no worker has taken yet: 503
/// `QUEUE_FULL` with `Retry-After`, instead of a wait without bound. The count read from Redis is reused for
/// `refresh` (and raised by each request it admits), so a burst costs a few reads, not one per request; the
/// requests that arrive together as it runs out each read it. The cap is approximate by that much, per replica.
final class BacklogGate: Sendable {
    let queue: JobQueue<InferenceJob>
    /// The most jobs that may wait for a worker; 0 for no cap.
    let maxWaiting: Int
    let refresh: Duration
    private let last = NIOLockedValueBox<(at: ContinuousClock.Instant, waiting: Int)?>(nil)

    init(queue: JobQueue<InferenceJob>, maxWaiting: Int, refresh: Duration = .milliseconds(200)) {
        self.queue = queue
        self.maxWaiting = maxWaiting
        self.refresh = refresh
    }

    /// Throws 503 `QUEUE_FULL` when the backlog is at its cap.
    func admit() async throws {
        guard maxWaiting > 0 else { return }
        let now = ContinuousClock.now
        var waiting: Int
        if let known = last.withLockedValue({ $0 }), now - known.at < refresh {
            waiting = known.waiting
        } else {
            waiting = try await queue.waitingCount()
            last.withLockedValue { $0 = (now, waiting) }
        }
        guard waiting < maxWaiting else {
            ChatMetrics.rateLimited(policy: "queue-full")
            throw ChatError(
                .unavailable, code: "QUEUE_FULL", message: "Too many replies are waiting for a worker; try again shortly", retryAfter: 5
            )
        }
        // Counted at once, so the requests of one refresh interval cannot overshoot the cap by much.
        last.withLockedValue { if let known = $0 { $0 = (known.at, known.waiting + 1) } }
    }
}

import ChatCore
import NIOConcurrencyHelpers
import Queue

/// Refuses new generations while the job queue holds `maxWaiting` jobs no worker has taken yet: 503
/// `QUEUE_FULL` with `Retry-After`, instead of a wait without bound. The count read from Redis is reused (and
/// raised by each request it admits); once older than `refresh` it is read again in the background while
/// requests go on with the last count, and only a count older than `maxAge` (or none yet) is waited for. So a
/// request does not pay a round trip for it, and the cap is approximate by that much, per replica.
final class BacklogGate: Sendable {
    let queue: JobQueue<InferenceJob>
    /// The most jobs that may wait for a worker; 0 for no cap.
    let maxWaiting: Int
    let refresh: Duration
    let maxAge: Duration
    private let last = NIOLockedValueBox<Count?>(nil)
    /// Requests admitted so far: those admitted while a read runs are added to what it returns.
    private let admitted = NIOLockedValueBox(0)

    private struct Count {
        var at: ContinuousClock.Instant
        var waiting: Int
        var reading = false
    }

    init(queue: JobQueue<InferenceJob>, maxWaiting: Int, refresh: Duration = .milliseconds(200), maxAge: Duration = .seconds(2)) {
        self.queue = queue
        self.maxWaiting = maxWaiting
        self.refresh = refresh
        self.maxAge = maxAge
    }

    /// Throws 503 `QUEUE_FULL` when the backlog is at its cap.
    func admit() async throws {
        guard maxWaiting > 0 else { return }
        let now = ContinuousClock.now
        enum Known { case fresh(Int), stale(Int), none }
        let known = last.withLockedValue { last -> Known in
            guard let value = last, now - value.at < maxAge else { return .none }
            guard now - value.at >= refresh, !value.reading else { return .fresh(value.waiting) }
            last?.reading = true
            return .stale(value.waiting)
        }
        var waiting: Int
        switch known {
        case .fresh(let count):
            waiting = count
        case .stale(let count):
            waiting = count
            // Taken before this request is counted: the read adds it (and every later one) to what Redis says.
            let before = admitted.withLockedValue { $0 }
            Task { await self.read(admittedBefore: before) }
        case .none:
            let before = admitted.withLockedValue { $0 }
            waiting = try await queue.waitingCount() + admitted.withLockedValue { $0 } - before
            last.withLockedValue { $0 = Count(at: now, waiting: waiting) }
        }
        guard waiting < maxWaiting else {
            ChatMetrics.rateLimited(policy: "queue-full")
            throw ChatError(
                .unavailable, code: "QUEUE_FULL", message: "Too many replies are waiting for a worker; try again shortly", retryAfter: 5
            )
        }
        // Counted at once, so the requests of one refresh interval cannot overshoot the cap by much.
        admitted.withLockedValue { $0 += 1 }
        last.withLockedValue { $0?.waiting += 1 }
    }

    /// Reads the count again (one read at a time), plus the requests admitted meanwhile (some of which the read
    /// may have counted already: the error is on the side of refusing); a failed read leaves the last count to age out.
    private func read(admittedBefore before: Int) async {
        let at = ContinuousClock.now
        let waiting = try? await queue.waitingCount()
        let since = admitted.withLockedValue { $0 } - before
        last.withLockedValue { last in
            guard let waiting else {
                last?.reading = false
                return
            }
            last = Count(at: at, waiting: waiting + since)
        }
    }
}

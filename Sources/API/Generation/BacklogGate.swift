import ChatCore
import NIOConcurrencyHelpers
import Queue

/// Refuses new generations while the job queue holds `maxWaiting` jobs no worker has taken yet: 503
/// `QUEUE_FULL` with `Retry-After`, instead of a wait without bound. The count read from Redis is reused (and
/// raised by each request it admits); once older than `refresh` it is read again in the background while
/// requests go on with the last count, and only a count older than `maxAge` (or none yet) is waited for; the
/// requests that find none share one read. So a request does not pay a round trip for it, a burst after a quiet
/// spell pays one in all, and the cap is approximate by that much, per replica.
final class BacklogGate: Sendable {
    let queue: JobQueue<InferenceJob>
    /// The most jobs that may wait for a worker; 0 for no cap.
    let maxWaiting: Int
    let refresh: Duration
    let maxAge: Duration
    private let state = NIOLockedValueBox(State())

    private struct State {
        /// The last count, when the read that gave it ended (its age) and began (a read begun later stands).
        var count: (at: ContinuousClock.Instant, began: ContinuousClock.Instant, waiting: Int)?
        /// Requests admitted so far: those admitted while a read runs are added to what it returns.
        var admitted = 0
        /// A background refresh runs (at most one at a time).
        var reading = false
        /// The read the requests that found no count wait for, while it runs.
        var shared: Task<Void, any Error>?
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
        /// Whether the request is admitted (nil: no count to go on), and the admissions count a refresh to start
        /// now is to add to (nil: none).
        typealias Decision = (admitted: Bool?, refreshFrom: Int?)
        // Decides, and counts the request, in one hold of the lock; a stale count starts a refresh either way.
        func decide(now: ContinuousClock.Instant) -> Decision {
            state.withLockedValue { state in
                guard let count = state.count, now - count.at < maxAge else { return (nil, nil) }
                var refreshFrom: Int?
                if now - count.at >= refresh, !state.reading {
                    state.reading = true
                    refreshFrom = state.admitted
                }
                guard count.waiting < maxWaiting else { return (false, refreshFrom) }
                state.admitted += 1
                state.count?.waiting += 1
                return (true, refreshFrom)
            }
        }
        var decision = decide(now: .now)
        if decision.admitted == nil {
            // No count to go on: this request waits for one, with every other request that found none (a failure
            // to read Redis is the error of each).
            try await sharedRead(now: .now)?.value
            decision = decide(now: .now)
        }
        if let before = decision.refreshFrom {
            // Detached: the refresh is not part of this request (nor of its trace).
            Task.detached { try? await self.read(background: true, admittedBefore: before) }
        }
        guard decision.admitted == true else {
            ChatMetrics.rateLimited(policy: "queue-full")
            throw ChatError(
                .unavailable, code: "QUEUE_FULL", message: "Too many replies are waiting for a worker; try again shortly", retryAfter: 5
            )
        }
    }

    /// The read under way for requests that found no count, or a new one; nil when a usable count came in since the
    /// caller looked. Detached, so it carries neither the trace nor the priority of the request that happens to
    /// start it. Waiting for it is not cancellable; Redis's command timeout bounds it.
    private func sharedRead(now: ContinuousClock.Instant) -> Task<Void, any Error>? {
        state.withLockedValue { state in
            if let count = state.count, now - count.at < maxAge { return nil }
            if let running = state.shared { return running }
            // The task takes the lock (as it starts and as it ends), so it cannot clear `shared` before it is set here.
            let task = Task<Void, any Error>.detached {
                defer { self.state.withLockedValue { $0.shared = nil } }
                try await self.read(background: false)
            }
            state.shared = task
            return task
        }
    }

    /// Reads the count, plus the requests admitted since `admittedBefore` (some of which Redis may have counted
    /// already: the error is on the side of refusing). A failed read leaves the last count to age out. The
    /// `background` read is the one `reading` stands for.
    private func read(background: Bool, admittedBefore: Int? = nil) async throws {
        let began = ContinuousClock.now
        let before = admittedBefore ?? state.withLockedValue { $0.admitted }
        let waiting: Int
        do {
            waiting = try await queue.waitingCount()
        } catch {
            if background { state.withLockedValue { $0.reading = false } }
            throw error
        }
        state.withLockedValue { state in
            if background { state.reading = false }
            // A newer count (a read that began later) stands. The age runs from now: a slow read (Redis stalled)
            // still gives a count to decide on, rather than no count and a refusal.
            if let count = state.count, count.began > began { return }
            state.count = (.now, began, waiting + state.admitted - before)
        }
    }
}

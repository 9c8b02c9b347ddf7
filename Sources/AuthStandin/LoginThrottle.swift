/// Counts failed logins in a sliding window, per user and per client address, and refuses attempts once
/// either has reached its limit. An attempt counts as a failure from the moment it starts and is forgiven
/// when it succeeds, so a burst of concurrent guesses cannot overshoot the limit while their hashes run.
actor LoginThrottle {
    /// The outcome of asking to attempt a login.
    enum Decision: Sendable, Equatable {
        /// Go ahead; report a success with `succeeded(_:)`, a failure needs no report.
        case allowed(Attempt)
        /// Over the limit: try again after this many seconds (at least 1).
        case refused(retryAfter: Int)
    }

    /// A login in progress, already counted as a failure.
    struct Attempt: Sendable, Equatable {
        let user: String
        let client: String
        let startedAt: Double
    }

    private let maxPerUser: Int
    private let maxPerClient: Int
    private let window: Double
    private var userFailures: [String: [Double]] = [:]
    private var clientFailures: [String: [Double]] = [:]
    private var attemptsSinceSweep = 0

    /// A throttle allowing `maxPerUser` failures per user and `maxPerClient` per client within `window` seconds.
    init(maxPerUser: Int, maxPerClient: Int, window: Int) {
        self.maxPerUser = maxPerUser
        self.maxPerClient = maxPerClient
        self.window = Double(window)
    }

    /// Whether `user` may try to log in from `client` at `now` (seconds); if so, the attempt is counted
    /// as a failure until `succeeded(_:)` is called with it.
    func begin(user: String, client: String, now: Double) -> Decision {
        sweepOccasionally(now: now)
        let recentForUser = recent(userFailures[user], now: now)
        let recentForClient = recent(clientFailures[client], now: now)
        let waits = [
            retryAfter(recentForUser, limit: maxPerUser, now: now),
            retryAfter(recentForClient, limit: maxPerClient, now: now),
        ].compactMap { $0 }
        if let wait = waits.max() {
            userFailures[user] = recentForUser
            clientFailures[client] = recentForClient
            return .refused(retryAfter: wait)
        }
        userFailures[user] = recentForUser + [now]
        clientFailures[client] = recentForClient + [now]
        return .allowed(Attempt(user: user, client: client, startedAt: now))
    }

    /// Records that `attempt` succeeded: the user's failures are forgiven, and the attempt no longer counts
    /// against its client address.
    func succeeded(_ attempt: Attempt) {
        userFailures[attempt.user] = nil
        if var list = clientFailures[attempt.client], let index = list.firstIndex(of: attempt.startedAt) {
            list.remove(at: index)
            clientFailures[attempt.client] = list.isEmpty ? nil : list
        }
    }

    /// How many keys are tracked (users plus client addresses); tests use it to check the sweep.
    var trackedKeys: Int { userFailures.count + clientFailures.count }

    private func recent(_ failures: [Double]?, now: Double) -> [Double] {
        (failures ?? []).filter { $0 > now - window }
    }

    /// Seconds until enough failures leave the window for one more attempt, or nil if one is allowed now.
    private func retryAfter(_ failures: [Double], limit: Int, now: Double) -> Int? {
        guard failures.count >= limit else { return nil }
        let expiring = failures.sorted()[failures.count - limit]
        return max(1, Int((expiring + window - now).rounded(.up)))
    }

    /// Drops keys whose failures have all left the window, so that guessed names do not pile up.
    private func sweepOccasionally(now: Double) {
        attemptsSinceSweep += 1
        guard attemptsSinceSweep >= 1_024 else { return }
        attemptsSinceSweep = 0
        let cutoff = now - window
        userFailures = userFailures.filter { $0.value.contains { $0 > cutoff } }
        clientFailures = clientFailures.filter { $0.value.contains { $0 > cutoff } }
    }
}

/// Keeps, per job, the latest attempt seen in a stream read in order, and drops the events of an earlier
/// attempt that come after it (a worker that lost its job; the fences in Redis refuse those already, this is
/// the relays' second line). Events that carry no attempt pass.
public struct StaleAttemptFilter: Sendable {
    private var latest: [String: Int] = [:]

    /// A filter that has seen nothing.
    public init() {}

    /// Whether `event` is to be relayed; remembers its attempt.
    public mutating func admit(_ event: SessionEvent) -> Bool {
        guard event.attempt > 0 else { return true }
        if event.attempt < latest[event.jobID, default: 0] { return false }
        latest[event.jobID] = event.attempt
        return true
    }
}

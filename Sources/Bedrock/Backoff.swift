/// Exponential backoff with full jitter: before retry `n` (1-based) wait a uniformly random time in
/// `0 ... min(maxBackoff, baseBackoff * 2^(n-1))`.
public struct Backoff: Sendable {
    /// The longest wait before the first retry.
    public var base: Duration
    /// The longest wait before any retry.
    public var maximum: Duration

    /// Backoff from `base`, doubling up to `maximum`.
    public init(base: Duration, maximum: Duration) {
        self.base = base
        self.maximum = maximum
    }

    /// The wait before retry `retry` (1 = the first retry), drawn with `random`.
    public func delay(beforeRetry retry: Int, using random: inout some RandomNumberGenerator) -> Duration {
        let cap = min(maximum, base * (1 << min(max(retry - 1, 0), 20)))
        let nanoseconds = cap.components.seconds * 1_000_000_000 + cap.components.attoseconds / 1_000_000_000
        guard nanoseconds > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...nanoseconds, using: &random))
    }
}

/// Runs `operation`, failing with `error()` if it has not finished within `limit`; the operation is cancelled then.
func withTimeLimit<T: Sendable>(
    _ limit: Duration, error: @escaping @Sendable () -> any Error, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw error()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

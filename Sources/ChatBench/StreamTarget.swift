/// Something virtual users stream replies from; each target measures a request the same way (see `StreamSample`).
protocol StreamTarget: Sendable {
    /// Which target this is.
    var kind: BenchTarget { get }

    /// Sets up `count` virtual users for a step (tokens, credits, sessions where the target needs them).
    func prepareUsers(count: Int, messages: Int, step: String) async throws -> [VirtualUser]

    /// Streams message `message` of `user` and measures it; failures are recorded in the sample, never thrown.
    func stream(user: VirtualUser, message: Int, step: String) async -> StreamSample
}

extension StreamTarget {
    /// Users that are only numbers, for targets with no accounts of their own.
    func anonymousUsers(_ count: Int) -> [VirtualUser] {
        (0..<count).map { VirtualUser(index: $0, userID: "bench-\($0)", token: "") }
    }
}

/// The kind of error a request's failure counts as in the report.
func errorKind(_ error: any Error) -> String {
    if error is CancellationError { return "cancelled" }
    let text = String(describing: error)
    if text.contains("deadlineExceeded") || text.contains("Timeout") || text.contains("timeout") { return "timeout" }
    if text.contains("connect") || text.contains("Connect") || text.contains("refused") { return "connect" }
    if text.contains("remoteConnectionClosed") || text.contains("closed") { return "closed" }
    return "other"
}

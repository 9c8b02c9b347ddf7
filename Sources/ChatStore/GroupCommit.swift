import Synchronization

/// Group commit for requests to one database: a request waits only while a batch is on its way, then goes with
/// everything that queued meanwhile (up to `maxBatch`), in one call of `write`. So a lone request is written at
/// once, and under load each round trip carries many.
final class GroupCommit<Request: Sendable, Output: Sendable>: Sendable {
    /// Writes a batch; returns each request's own result, in order.
    typealias Write = @Sendable ([Request]) async -> [Result<Output, any Error>]

    private struct Waiting: Sendable {
        let request: Request
        let continuation: CheckedContinuation<Output, any Error>
    }

    private struct State: Sendable {
        var queue: [Waiting] = []
        var inFlight = false
        var batches = 0
    }

    /// The most requests one batch carries.
    let maxBatch: Int
    private let write: Write
    private let state = Mutex(State())

    /// A group commit that writes its batches with `write`.
    init(maxBatch: Int = 128, write: @escaping Write) {
        self.maxBatch = max(1, maxBatch)
        self.write = write
    }

    /// How many batches were written so far.
    var batchesWritten: Int { state.withLock { $0.batches } }

    /// Writes `request` with whatever else is waiting and returns its own result.
    func submit(_ request: Request) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            let batch: [Waiting]? = state.withLock { state in
                state.queue.append(Waiting(request: request, continuation: continuation))
                guard !state.inFlight else { return nil }
                state.inFlight = true
                return Self.take(&state.queue, maxBatch)
            }
            if let batch { Task { await self.drain(from: batch) } }
        }
    }

    /// Writes `batch`, then what queued meanwhile, until the queue is empty.
    private func drain(from batch: [Waiting]) async {
        var batch = batch
        while true {
            state.withLock { $0.batches += 1 }
            let results = await write(batch.map(\.request))
            for (index, waiting) in batch.enumerated() {
                waiting.continuation.resume(with: index < results.count ? results[index] : .failure(GroupCommitError()))
            }
            let next: [Waiting]? = state.withLock { state in
                guard !state.queue.isEmpty else {
                    state.inFlight = false
                    return nil
                }
                return Self.take(&state.queue, maxBatch)
            }
            guard let next else { return }
            batch = next
        }
    }

    private static func take(_ queue: inout [Waiting], _ count: Int) -> [Waiting] {
        let batch = Array(queue.prefix(count))
        queue.removeFirst(batch.count)
        return batch
    }
}

/// A batch's write returned fewer results than it had requests (a bug in the write).
struct GroupCommitError: Error, CustomStringConvertible {
    var description: String { "a group commit's write returned no result for a request" }
}

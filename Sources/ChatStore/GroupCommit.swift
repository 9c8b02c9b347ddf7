import Synchronization

/// Group commit for requests to one database: a request waits only while `maxInFlight` batches are on their
/// way, then goes with everything that queued meanwhile, up to `maxBatch` requests and `maxWeight` in all (a
/// request heavier than that goes alone), in one call of `write`. So a lone request is written at once, and
/// under load each round trip carries many.
final class GroupCommit<Request: Sendable, Output: Sendable>: Sendable {
    /// Writes a batch; returns each request's own result, in order.
    typealias Write = @Sendable ([Request]) async -> [Result<Output, any Error>]

    private struct Waiting: Sendable {
        let request: Request
        let weight: Int
        let continuation: CheckedContinuation<Output, any Error>
    }

    private struct State: Sendable {
        var queue: [Waiting] = []
        var inFlight = 0
        var batches = 0
    }

    /// The most requests one batch carries.
    let maxBatch: Int
    /// The most weight (for example bytes) one batch carries.
    let maxWeight: Int
    /// The most batches on their way at once.
    let maxInFlight: Int
    private let weigh: @Sendable (Request) -> Int
    private let write: Write
    private let state = Mutex(State())

    /// A group commit that writes its batches with `write`; `weigh` tells what each request counts against
    /// `maxWeight`.
    init(
        maxBatch: Int = 128, maxWeight: Int = .max, maxInFlight: Int = 1, weigh: @escaping @Sendable (Request) -> Int = { _ in 1 },
        write: @escaping Write
    ) {
        self.maxBatch = max(1, maxBatch)
        self.maxWeight = max(1, maxWeight)
        self.maxInFlight = max(1, maxInFlight)
        self.weigh = weigh
        self.write = write
    }

    /// How many requests wait for a batch now.
    var queued: Int { state.withLock { $0.queue.count } }

    /// How many batches were written so far.
    var batchesWritten: Int { state.withLock { $0.batches } }

    /// Writes `request` with whatever else is waiting and returns its own result.
    func submit(_ request: Request) async throws -> Output {
        let weight = weigh(request)
        return try await withCheckedThrowingContinuation { continuation in
            let batch: [Waiting]? = state.withLock { state in
                state.queue.append(Waiting(request: request, weight: weight, continuation: continuation))
                guard state.inFlight < maxInFlight else { return nil }
                state.inFlight += 1
                return take(&state)
            }
            if let batch { Task { await self.drain(from: batch) } }
        }
    }

    /// Writes `batch`, then what queued meanwhile, until the queue is empty.
    private func drain(from batch: [Waiting]) async {
        var batch = batch
        while true {
            let results = await write(batch.map(\.request))
            for (index, waiting) in batch.enumerated() {
                waiting.continuation.resume(with: index < results.count ? results[index] : .failure(GroupCommitError()))
            }
            let next: [Waiting]? = state.withLock { state in
                guard !state.queue.isEmpty else {
                    state.inFlight -= 1
                    return nil
                }
                return take(&state)
            }
            guard let next else { return }
            batch = next
        }
    }

    /// The next batch from the front of the queue: at least one request, then as many as fit.
    private func take(_ state: inout State) -> [Waiting] {
        var count = 0
        var weight = 0
        for waiting in state.queue {
            guard count < maxBatch, count == 0 || weight + waiting.weight <= maxWeight else { break }
            count += 1
            weight += waiting.weight
        }
        let batch = Array(state.queue.prefix(count))
        state.queue.removeFirst(count)
        state.batches += 1
        return batch
    }
}

/// A batch's write returned fewer results than it had requests (a bug in the write).
struct GroupCommitError: Error, CustomStringConvertible {
    var description: String { "a group commit's write returned no result for a request" }
}

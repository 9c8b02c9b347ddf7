import Synchronization
import Testing

@testable import ChatStore

@Suite("group commit: batches by count and weight, each request its own result")
struct GroupCommitTests {
    /// What the write saw: every batch's requests, and the most batches written at once.
    final class Log: Sendable {
        let state = Mutex((batches: [[Int]](), running: 0, mostRunning: 0))
    }

    @Test("requests queued behind a slow batch go together, never above the count, weight and in-flight limits", .timeLimit(.minutes(1)))
    func batchesRespectTheLimits() async throws {
        let log = Log()
        let open = Mutex(false)
        let commit = GroupCommit<Int, String>(maxBatch: 4, maxWeight: 10, maxInFlight: 2, weigh: { $0 }) { batch in
            log.state.withLock {
                $0.batches.append(batch)
                $0.running += 1
                $0.mostRunning = max($0.mostRunning, $0.running)
            }
            // The first two batches wait until the test lets them go.
            while batch.contains(-1) && !open.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(1)) }
            log.state.withLock { $0.running -= 1 }
            return batch.map { $0 == 7 ? .failure(GroupCommitError()) : .success("r\($0)") }
        }
        // Two slow batches hold both slots, so everything after them queues.
        async let slow1 = commit.submit(-1)
        async let slow2 = commit.submit(-1)
        try await waitUntil { log.state.withLock { $0.running } == 2 }
        let weights = [1, 2, 3, 4, 12, 1, 1, 1, 1, 1, 7, 2]
        let results = await withTaskGroup(of: (Int, Result<String, any Error>).self) { group in
            for (order, weight) in weights.enumerated() {
                // Queued one after another, so the queue's order is known.
                try? await waitUntil { commit.queued == order }
                group.addTask { (weight, await Self.result { try await commit.submit(weight) }) }
            }
            try? await waitUntil { commit.queued == weights.count }
            open.withLock { $0 = true }
            return await group.reduce(into: []) { $0.append($1) }
        }
        _ = try await (slow1, slow2)
        for (weight, result) in results {
            if weight == 7 {
                #expect(throws: GroupCommitError.self) { try result.get() }
            } else {
                #expect(try result.get() == "r\(weight)")
            }
        }
        let batches = log.state.withLock { $0.batches }.filter { !$0.contains(-1) }
        #expect(batches.flatMap { $0 } == weights)  // in order, each once
        for batch in batches {
            #expect(batch.count <= 4)
            #expect(batch.count == 1 || batch.reduce(0, +) <= 10)
        }
        #expect(batches.contains([12]))  // heavier than a batch may be: alone
        #expect(batches.count < weights.count)  // and they did go together
        #expect(log.state.withLock { $0.mostRunning } == 2)
    }

    /// What `body` returned or threw.
    static func result<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    /// Waits until `condition` holds, checking every millisecond, for at most ten seconds.
    func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}

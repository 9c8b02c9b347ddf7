import Synchronization

/// A first-come, first-served asynchronous lock: one holder at a time, the others suspended (never blocking a
/// thread) and let in in the order they asked.
///
/// Each user's account has one, so that the changes of one user apply one after another in this process
/// while those of different users run side by side.
final class AsyncTurn: Sendable {
    private struct State {
        var busy = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        /// Index of the next one to let in (`waiting` is compacted when it empties).
        var head = 0
    }

    private let state = Mutex(State())

    /// Whether nobody holds the turn or waits for it.
    var isIdle: Bool {
        state.withLock { !$0.busy && $0.head == $0.waiting.count }
    }

    /// Returns once the caller holds the turn; `release()` must follow.
    func acquire() async {
        let taken = state.withLock { state in
            guard !state.busy else { return false }
            state.busy = true
            return true
        }
        guard !taken else { return }
        await withCheckedContinuation { continuation in
            let now = state.withLock { state in
                // Released between the two looks: take it at once.
                guard state.busy else {
                    state.busy = true
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Hands the turn to the longest waiter, or frees it.
    func release() {
        let next: CheckedContinuation<Void, Never>? = state.withLock { state in
            guard state.head < state.waiting.count else {
                state.busy = false
                state.waiting.removeAll(keepingCapacity: true)
                state.head = 0
                return nil
            }
            let next = state.waiting[state.head]
            state.head += 1
            if state.head == state.waiting.count {
                state.waiting.removeAll(keepingCapacity: true)
                state.head = 0
            }
            return next
        }
        next?.resume()
    }
}

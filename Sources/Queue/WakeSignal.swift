import NIOConcurrencyHelpers

/// A wake-up for one waiter at a time: `signal()` wakes the task waiting now, or, if none is, the next one to
/// wait. A wait that is cancelled simply returns, and the signal stays usable: unlike iterating an
/// `AsyncStream`, whose cancellation ends the stream for good (every later wait would return at once, and a
/// loop waiting on it would spin).
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        /// How many waits began, for tests.
        var wakeups = 0
    }

    private let state = NIOLockedValueBox(State())

    /// Wakes the waiter, or lets the next wait return at once.
    func signal() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns once signalled (now or since the last wait) or when the calling task is cancelled.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLockedValue { state -> Bool in
                    precondition(state.waiter == nil, "a WakeSignal has one waiter at a time")
                    state.wakeups += 1
                    if state.pending || Task.isCancelled {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }?.resume()
        }
    }

    /// Whether a task waits now (for tests).
    var isWaited: Bool { state.withLockedValue { $0.waiter != nil } }

    /// How many waits have begun (for tests: a loop that waits on this signal must not spin).
    var waits: Int { state.withLockedValue { $0.wakeups } }
}

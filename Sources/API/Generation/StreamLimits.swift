import ChatCore
import ChatState
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The per-user caps on open reply streams (and waiting `POST /messages`) and on observer streams, over every
/// replica (`UserSlots` in Redis). Over a cap: 429 `TOO_MANY_STREAMS`, before anything is started.
struct StreamLimits: Sendable {
    let slots: UserSlots
    /// The most reply streams one user may hold open (`MAX_STREAMS_PER_USER`); 0 for no cap.
    let maxStreams: Int
    /// The most observer streams one user may hold open (`MAX_OBSERVERS_PER_USER`); 0 for no cap.
    let maxObservers: Int

    /// Takes a slot of `kind` for `userID` under `id` (a fresh random id per slot), or throws 429.
    func open(_ kind: UserSlots.Kind, userID: String, id: String) async throws -> StreamLease {
        let cap = kind == .streams ? maxStreams : maxObservers
        guard cap > 0 else { return StreamLease(slots: nil, kind: kind, userID: userID, id: id) }
        guard try await slots.acquire(kind, userID: userID, id: id, cap: cap) else { throw Self.refusal(kind, cap: cap) }
        return StreamLease(slots: slots, kind: kind, userID: userID, id: id)
    }

    /// A reply-stream slot for the generation's start to take in its own Redis call (`GenerationStarter.start`),
    /// with the lease that holds it once taken; no claim when streams have no cap. The lease's `release()` is
    /// harmless if the start never took the slot.
    func streamClaim(userID: String) -> (claim: UserSlots.Claim?, lease: StreamLease) {
        let lease = StreamLease(slots: maxStreams > 0 ? slots : nil, kind: .streams, userID: userID, id: RandomID.uuidString())
        return (lease.claim(cap: maxStreams), lease)
    }

    /// The 429 for a user at `kind`'s cap of `cap`; counts the refusal in the metrics.
    static func refusal(_ kind: UserSlots.Kind, cap: Int) -> ChatError {
        ChatMetrics.rateLimited(policy: kind == .streams ? "streams" : "observers")
        let what = kind == .streams ? "streams" : "observer streams"
        return ChatError(.tooManyRequests, code: "TOO_MANY_STREAMS", message: "You have \(cap) \(what) open; close one first", retryAfter: 5)
    }
}

/// One held stream slot: renewed while its stream lives, given back when it ends (or left to lapse if the
/// process dies).
struct StreamLease: Sendable {
    let slots: UserSlots?
    let kind: UserSlots.Kind
    let userID: String
    let id: String

    /// Runs `body` (the stream) with the slot renewed every third of its lease, then gives the slot back, whether
    /// `body` returned or threw.
    func hold<T>(_ body: () async throws -> T) async throws -> T {
        guard let slots else { return try await body() }
        // A timer on an event loop rather than a task sleeping beside the stream: an idle stream holds a few hundred
        // bytes for it, not a task's stack (measured per idle connection by `make bench`). A tick skips while the
        // last renewal still runs; at the end the timer is stopped and the renewal in flight awaited before the slot
        // is given back, so no renewal lands after the release (it would take the slot again for a lease).
        let (kind, userID, id) = (kind, userID, id)
        let loop = NIOSingletons.posixEventLoopGroup.any()
        let period = TimeAmount.nanoseconds((slots.lease / 3).nanoseconds)
        let inFlight = NIOLockedValueBox<Task<Void, Never>?>(nil)
        let renewal = loop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            inFlight.withLockedValue { current in
                guard current == nil else { return }
                current = Task {
                    try? await slots.renew(kind, userID: userID, id: id)
                    inFlight.withLockedValue { $0 = nil }
                }
            }
        }
        func giveBack() async {
            let stopped = loop.makePromise(of: Void.self)
            renewal.cancel(promise: stopped)
            try? await stopped.futureResult.get()
            await inFlight.withLockedValue { $0 }?.value
            try? await slots.release(kind, userID: userID, id: id)
        }
        do {
            let result = try await body()
            await giveBack()
            return result
        } catch {
            await giveBack()
            throw error
        }
    }

    /// This lease's slot for a script to take under `cap` (`UserSlots.claim`); nil without a cap.
    func claim(cap: Int) -> UserSlots.Claim? {
        guard let slots, cap > 0 else { return nil }
        return slots.claim(kind, userID: userID, id: id, cap: cap)
    }

    /// A streaming response's body that runs `write` with this lease, for `write` to hold while it streams. A
    /// response the server drops unsent gives the slot back (`LeaseHandOff`).
    func responseBody(_ write: @escaping @Sendable (StreamLease, inout any ResponseBodyWriter) async throws -> Void) -> ResponseBody {
        let handOff = LeaseHandOff(self)
        return ResponseBody { writer in try await write(handOff.take(), &writer) }
    }

    /// Gives the slot back now (the stream never started).
    func release() async {
        guard let slots else { return }
        try? await slots.release(kind, userID: userID, id: id)
    }
}

/// A lease on its way to a streaming response's body. The body takes it when it runs and from then on holds and
/// gives it back (`StreamLease.hold`). The server runs the body only once the response's head is written, so a
/// client that hangs up first leaves a response dropped unsent: its body, and this hand-off with it, is released
/// without running, and the slot is given back then (by a task of its own; should Redis not take that release,
/// the slot lapses with its lease as before) rather than held until its lease lapses.
final class LeaseHandOff: Sendable {
    private let lease: StreamLease
    private let taken = NIOLockedValueBox(false)

    /// Holds `lease` for the body that will run.
    init(_ lease: StreamLease) { self.lease = lease }

    /// The lease, for the body that runs, which calls this once, first: from then on the body gives it back.
    func take() -> StreamLease {
        taken.withLockedValue { $0 = true }
        return lease
    }

    deinit {
        guard !taken.withLockedValue({ $0 }) else { return }
        Task { [lease] in await lease.release() }
    }
}

import Foundation
import Synchronization

/// The streaming-session ids a user has ever used, as far as this process knows: every one it saw in an
/// account copy, and every one in `usage` settled up to `asOf` (less a margin for other processes' clocks).
///
/// A session id absent from the account and from here was never reserved, so `initialize` can refuse a reused
/// id (409) without asking `usage` each time.
struct SessionHistory: Sendable {
    /// The ids.
    var ids: Set<String> = []
    /// When `usage` was last read for them (this process's clock); nil before the first read.
    var asOf: Date?

    /// Adds the streaming sessions of `account` (open or settled: an id once used stays used).
    mutating func note(_ account: Account) {
        for entry in account.entries where entry.kind == .stream {
            if let sessionID = entry.sessionID { ids.insert(sessionID) }
        }
    }

    /// Whether `sessionID` was used.
    func contains(_ sessionID: String) -> Bool { ids.contains(sessionID) }
}

/// This process's copy of one user's account, with the turn that serializes its changes.
///
/// `copy` is either the document as last read from MongoDB, or as last written by a conditional write that
/// MongoDB acknowledged; it is only read or replaced by the holder of `turn`. `archived` and `archiving` are
/// updated by archive completions at any time.
final class AccountSlot: Sendable {
    /// Held by the one change of this user running in this process.
    let turn = AsyncTurn()
    private let state = Mutex(State())

    private struct State {
        var copy: Account?
        var history = SessionHistory()
        /// Settled entries whose `usage` document is written: the next write of the account prunes them.
        var archived: Set<String> = []
        /// Settled entries whose `usage` document is being written.
        var archiving: Set<String> = []
        var lastUsed = ContinuousClock.now
    }

    /// The copy to change (nil when it must be read first), and the session history.
    var copy: (account: Account?, history: SessionHistory) {
        state.withLock { state in
            state.lastUsed = .now
            return (state.copy, state.history)
        }
    }

    /// Keeps `account` (read or written just now) and `history` as the copy.
    func keep(_ account: Account, history: SessionHistory) {
        state.withLock { state in
            state.copy = account
            state.history = history
        }
    }

    /// Drops the copy: the next change reads the document first (a write conflicted or its outcome is unknown).
    func forget() {
        state.withLock { $0.copy = nil }
    }

    /// Entries archived and not yet pruned from the account.
    var archived: Set<String> { state.withLock { $0.archived } }

    /// Forgets `ids` as archived: a write that pruned them was acknowledged.
    func pruned(_ ids: Set<String>) {
        guard !ids.isEmpty else { return }
        state.withLock { $0.archived.subtract(ids) }
    }

    /// The entries of `settled` neither archived nor being archived, now marked as being archived.
    func claimForArchive(_ settled: [LedgerEntry]) -> [LedgerEntry] {
        guard !settled.isEmpty else { return [] }
        return state.withLock { state in
            let claimed = settled.filter { !state.archived.contains($0.id) && !state.archiving.contains($0.id) }
            for entry in claimed { state.archiving.insert(entry.id) }
            return claimed
        }
    }

    /// An archive write of entry `id` ended: written (the next write of the account prunes it) or failed
    /// (a later change or the sweep tries again).
    func archiveEnded(_ id: String, written: Bool) {
        state.withLock { state in
            state.archiving.remove(id)
            if written { state.archived.insert(id) }
        }
    }

    /// Whether nothing uses the slot and it was last used before `cutoff`.
    func isIdle(since cutoff: ContinuousClock.Instant) -> Bool {
        turn.isIdle && state.withLock { $0.archiving.isEmpty && $0.lastUsed < cutoff }
    }
}

/// The slots of the users this process has served recently, one per user.
final class AccountSlots: Sendable {
    private let slots = Mutex<[String: AccountSlot]>([:])

    /// The user's slot, made on first use.
    func slot(for userID: String) -> AccountSlot {
        slots.withLock { slots in
            if let slot = slots[userID] { return slot }
            let slot = AccountSlot()
            slots[userID] = slot
            return slot
        }
    }

    /// Drops the slots unused for `idle` (their users' next change reads the document again); returns how many.
    @discardableResult
    func evict(idleFor idle: Duration) -> Int {
        let cutoff = ContinuousClock.now - idle
        return slots.withLock { slots in
            let idleUsers = slots.filter { $0.value.isIdle(since: cutoff) }.map(\.key)
            for user in idleUsers { slots[user] = nil }
            return idleUsers.count
        }
    }

    /// How many users have a slot.
    var count: Int { slots.withLock { $0.count } }
}

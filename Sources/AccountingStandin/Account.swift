import ChatCore
import Foundation

/// Credits an admin or supervisor granted to a user, spendable until `expiresAt`.
struct Allocation: Sendable, Equatable {
    /// An ObjectId (24 hex digits).
    var id: String
    var originalCredits: Int
    /// What is left of it: not spent, not held by an open reservation.
    var remaining: Int
    var expiresAt: Date
    var notes: String?
    /// The admin or supervisor who granted it.
    var allocatedBy: String
    var createdAt: Date
}

/// Credits an entry took from one allocation.
struct Draw: Sendable, Equatable {
    var allocationID: String
    var credits: Int
}

/// How an entry ended: what it cost and what went back to the balance.
struct Settlement: Sendable, Equatable {
    /// Credits charged (from the reservation, plus any excess taken from the balance).
    var creditsUsed: Int
    /// Credits given back to the balance.
    var refund: Int
    /// Credits released from the reservation whose allocation had expired meanwhile: gone.
    var forfeited: Int
    /// What the reported tokens cost; more than `creditsUsed` only when the balance could not cover it.
    var actualCost: Int
    var inputTokens: Int
    var outputTokens: Int
    var success: Bool
    var settledAt: Date
}

/// One change of a user's credits not yet archived in `usage`: an open streaming reservation, a settled one
/// (finalized or expired), or a direct charge from `/api/usage/record`.
struct LedgerEntry: Sendable, Equatable {
    /// A streaming reservation or a direct charge.
    enum Kind: String, Sendable { case stream, record }
    /// `reserved` while open; `finalized` or `expired` once settled, which never changes again.
    enum Status: String, Sendable { case reserved, finalized, expired }

    /// An ObjectId (24 hex digits); the `_id` of its `usage` document once archived.
    var id: String
    var kind: Kind
    var status: Status
    /// The caller's streaming-session id (streams only), unique per user.
    var sessionID: String?
    /// The chat session the generation belongs to, when the caller said.
    var chatSessionID: String?
    var service: String
    var operation: String
    var modelID: String?
    var estimatedTokens: Int?
    /// Credits reserved at initialization (0 for a direct charge).
    var reservedCredits: Int
    /// Credits still held: `reservedCredits` while reserved, 0 once settled.
    var held: Int
    /// Where the held credits came from, earliest-expiring allocation first; empty once settled.
    var draws: [Draw]
    var createdAt: Date
    /// When an open reservation expires and is refunded.
    var expiresAt: Date
    /// Set when the entry settles.
    var settlement: Settlement?
}

/// Tokens a generation used, as finalize reports them.
struct TokenUsage: Sendable, Equatable {
    var inputTokens: Int
    var outputTokens: Int
}

/// One user's credits: the single MongoDB document every change of their balance rewrites atomically.
///
/// Pure state and rules, no I/O: `AccountStore` loads it, applies one of these changes, and writes it back
/// with a compare-and-swap on `version`. Invariants: every `remaining` and `held` is non-negative, so the
/// available balance never goes below zero; credits are only moved between allocations and entries.
struct Account: Sendable, Equatable {
    let userID: String
    /// The stored document's version (0 before the first write); each write increments it.
    var version: Int
    /// Unexpired allocations, ordered by expiry: credits are drawn from the earliest-expiring first.
    var allocations: [Allocation]
    /// Open reservations, and settled entries until they are archived.
    var entries: [LedgerEntry]

    /// A user with no account document yet.
    static func empty(_ userID: String) -> Account {
        Account(userID: userID, version: 0, allocations: [], entries: [])
    }

    /// Credits that may be spent or reserved now (held credits excluded).
    var available: Int { allocations.reduce(0) { $0 + $1.remaining } }
    /// Credits held by open reservations.
    var reserved: Int { entries.reduce(0) { $0 + $1.held } }

    /// The earliest moment something needs doing: an allocation or reservation expiring, a settled entry to
    /// archive (due at once); nil when there is nothing.
    var nextDeadline: Date? {
        let allocationDeadlines = allocations.map(\.expiresAt)
        let entryDeadlines = entries.map { $0.status == .reserved ? $0.expiresAt : ($0.settlement?.settledAt ?? $0.createdAt) }
        return (allocationDeadlines + entryDeadlines).min()
    }

    /// The entry of streaming session `sessionID`, if it is still in the account.
    func stream(_ sessionID: String) -> LedgerEntry? {
        entries.first { $0.kind == .stream && $0.sessionID == sessionID }
    }

    /// Entries settled and waiting to be archived.
    var settledEntries: [LedgerEntry] { entries.filter { $0.status != .reserved } }

    // MARK: Changes

    /// Drops allocations that expired by `now` (their remaining credits are forfeited) and expires
    /// reservations past their deadline, returning what they held. True when anything changed.
    mutating func expire(at now: Date) -> Bool {
        let before = self
        allocations.removeAll { $0.expiresAt <= now }
        for index in entries.indices where entries[index].status == .reserved && entries[index].expiresAt <= now {
            let entry = entries[index]
            let (returned, forfeited) = release(entry.held, of: entry.draws)
            entries[index].status = .expired
            entries[index].held = 0
            entries[index].draws = []
            entries[index].settlement = Settlement(
                creditsUsed: 0, refund: returned, forfeited: forfeited, actualCost: 0, inputTokens: 0, outputTokens: 0, success: false,
                settledAt: now
            )
        }
        return self != before
    }

    /// Adds an allocation, keeping the expiry order.
    mutating func allocate(_ allocation: Allocation) {
        allocations.append(allocation)
        allocations.sort { ($0.expiresAt, $0.createdAt, $0.id) < ($1.expiresAt, $1.createdAt, $1.id) }
    }

    /// Holds `entry.reservedCredits` for a new streaming reservation. The same session still open with the
    /// same model and estimate returns the existing entry (`created` false); any other repeat is 409, and
    /// a balance below the cost is 402.
    mutating func reserve(_ entry: LedgerEntry) throws -> (entry: LedgerEntry, created: Bool) {
        if let existing = entry.sessionID.flatMap(stream) {
            guard existing.status == .reserved, existing.modelID == entry.modelID, existing.estimatedTokens == entry.estimatedTokens,
                let index = entries.firstIndex(where: { $0.kind == .stream && $0.sessionID == existing.sessionID })
            else {
                throw AccountingErrors.sessionExists
            }
            // The same reservation asked again: it is kept open for a full lifetime from now (a reply that runs
            // long keeps its credits held until it settles).
            entries[index].expiresAt = max(entries[index].expiresAt, entry.expiresAt)
            return (entries[index], false)
        }
        guard available >= entry.reservedCredits else { throw AccountingErrors.insufficientCredits }
        var entry = entry
        entry.draws = draw(entry.reservedCredits)
        entry.held = entry.reservedCredits
        entry.status = .reserved
        entries.append(entry)
        return (entry, true)
    }

    /// Settles the open reservation of `sessionID` at `cost` credits: the cost is taken from what it holds,
    /// the rest goes back to the allocations it came from (forfeited where those have expired), and a cost
    /// above the reservation is taken from the balance as far as it goes. A settled entry comes back as it
    /// is (finalize is idempotent); nil when the session is not in the account.
    mutating func settle(_ sessionID: String, cost: Int, usage: TokenUsage, success: Bool, now: Date) -> LedgerEntry? {
        guard let index = entries.firstIndex(where: { $0.kind == .stream && $0.sessionID == sessionID }) else { return nil }
        guard entries[index].status == .reserved else { return entries[index] }
        let entry = entries[index]
        let fromHold = min(cost, entry.held)
        let (returned, forfeited) = release(entry.held - fromHold, of: entry.draws)
        let excess = min(cost - fromHold, available)
        _ = draw(excess)
        entries[index].status = .finalized
        entries[index].held = 0
        entries[index].draws = []
        entries[index].settlement = Settlement(
            creditsUsed: fromHold + excess, refund: returned, forfeited: forfeited, actualCost: cost,
            inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, success: success, settledAt: now
        )
        return entries[index]
    }

    /// Charges `entry.settlement.creditsUsed` at once (a direct usage record); 402 when the balance is below it.
    mutating func charge(_ entry: LedgerEntry) throws {
        let credits = entry.settlement?.creditsUsed ?? 0
        guard available >= credits else { throw AccountingErrors.insufficientCredits }
        _ = draw(credits)
        entries.append(entry)
    }

    /// Removes the settled entries among `ids` (they are archived).
    mutating func prune(_ ids: Set<String>) {
        entries.removeAll { $0.status != .reserved && ids.contains($0.id) }
    }

    /// Whether the invariants hold; a state that breaks them is never written.
    var isConsistent: Bool {
        allocations.allSatisfy { $0.remaining >= 0 && $0.remaining <= $0.originalCredits }
            && entries.allSatisfy { $0.held >= 0 && $0.held == $0.draws.reduce(0) { $0 + $1.credits } }
    }

    // MARK: Moving credits

    /// Takes `credits` from the allocations, earliest-expiring first; the caller has checked `available`.
    private mutating func draw(_ credits: Int) -> [Draw] {
        var left = credits
        var draws: [Draw] = []
        for index in allocations.indices where left > 0 {
            let take = min(allocations[index].remaining, left)
            guard take > 0 else { continue }
            allocations[index].remaining -= take
            left -= take
            draws.append(Draw(allocationID: allocations[index].id, credits: take))
        }
        return draws
    }

    /// Gives `credits` of `draws` back, latest-expiring allocation first (so a charge keeps the earliest-
    /// expiring credits); what belongs to an allocation that has expired since is forfeited.
    private mutating func release(_ credits: Int, of draws: [Draw]) -> (returned: Int, forfeited: Int) {
        var left = credits
        var returned = 0
        for draw in draws.reversed() where left > 0 {
            let give = min(draw.credits, left)
            left -= give
            if let index = allocations.firstIndex(where: { $0.id == draw.allocationID }) {
                allocations[index].remaining += give
                returned += give
            }
        }
        return (returned, credits - returned)
    }
}

/// The errors the accounting stand-in answers with, each with a stable code.
enum AccountingErrors {
    /// 402, as the guide's clients expect it.
    static let insufficientCredits = ChatError(.paymentRequired, code: "INSUFFICIENT_CREDITS", message: "Insufficient credits")
    /// 409: the user already has a different or settled streaming session with this id.
    static let sessionExists = ChatError(.conflict, code: "SESSION_EXISTS", message: "A streaming session with this ID already exists")
    /// 404: no streaming session with this id for this user.
    static let sessionNotFound = ChatError(.notFound, code: "SESSION_NOT_FOUND", message: "Streaming session not found")
    /// 401 for every authentication failure.
    static let invalidToken = ChatError(.unauthorized, code: "INVALID_TOKEN", message: "Invalid authentication token")
    /// 403 for a role that may not do this.
    static let forbidden = ChatError(.forbidden, code: "FORBIDDEN", message: "You do not have permission to do this")
    /// 400 for a model the catalog does not list.
    static let invalidModel = ChatError(.badRequest, code: "INVALID_MODEL", message: "Invalid model ID")
    /// 503 when a user's account kept changing under every attempt to update it.
    static let busy = ChatError(.unavailable, code: "ACCOUNT_BUSY", message: "The account is busy; try again")
}

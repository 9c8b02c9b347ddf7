import Foundation

/// Usage totals over finalized streaming sessions and usage records, with breakdowns.
struct UsageStats: Sendable {
    /// One group's sums.
    struct Totals: Sendable, Equatable {
        var credits = 0
        var inputTokens = 0
        var outputTokens = 0
        var tokens = 0
        var requests = 0
    }

    /// All of them together.
    var totals: Totals
    /// By model id (`unspecified` for records without one), sorted by id.
    var byModel: [(key: String, totals: Totals)]
    /// By UTC day (`YYYY-MM-DD`), oldest first.
    var byDay: [(key: String, totals: Totals)]
}

/// What the whole system holds and has used, for admins.
struct SystemStats: Sendable {
    var usage: UsageStats
    /// Users with any recorded usage.
    var activeUsers: Int
    /// The users who used the most credits, most first (at most ten).
    var topUsers: [(key: String, totals: UsageStats.Totals)]
    /// Accounts, and the credits available and held across them (as of their last write).
    var accounts: Int
    var availableCredits: Int
    var reservedCredits: Int
}

extension AccountStore {
    /// The usage of `userID` (everyone's when nil): finalized sessions and records; expired reservations cost nothing and are left out.
    /// Every settlement this process answered before the call is counted (its archive is waited for).
    func usageStats(userID: String?) async throws -> UsageStats {
        await flushArchives()
        let byModel = try await database.usageTotals(userID: userID, by: .model).sorted { $0.key < $1.key }
        let byDay = try await database.usageTotals(userID: userID, by: .day).sorted { $0.key < $1.key }
        var totals = UsageStats.Totals()
        for group in byModel {
            totals.credits += group.totals.credits
            totals.inputTokens += group.totals.inputTokens
            totals.outputTokens += group.totals.outputTokens
            totals.tokens += group.totals.tokens
            totals.requests += group.totals.requests
        }
        return UsageStats(totals: totals, byModel: byModel, byDay: byDay)
    }

    /// Everyone's usage, the heaviest users and the credits held across all accounts.
    func systemStats() async throws -> SystemStats {
        let usage = try await usageStats(userID: nil)
        let byUser = try await database.usageTotals(userID: nil, by: .user)
            .sorted { ($0.totals.credits, $1.key) > ($1.totals.credits, $0.key) }
        let balances = try await database.balances()
        return SystemStats(
            usage: usage, activeUsers: byUser.count, topUsers: Array(byUser.prefix(10)),
            accounts: balances.accounts, availableCredits: balances.available, reservedCredits: balances.reserved
        )
    }
}

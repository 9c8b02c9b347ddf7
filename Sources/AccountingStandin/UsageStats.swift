import ChatStore
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
        var match: BSONFields = ["status": "finalized"]
        if let userID { match.append("userId", .string(userID)) }
        let filter = match
        let database = clients.databaseName
        let (models, days) = try await clients.withClient("usageStats") { client in
            try MongoCollection.with(StoredAccount.usage, in: database, client: client) { usage in
                (try usage.aggregate(Self.grouped(filter, by: "modelId")), try usage.aggregate(Self.grouped(filter, by: "day")))
            }
        }
        let byModel = try Self.groups(models)
        let byDay = try Self.groups(days)
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
        let database = clients.databaseName
        let (users, balances) = try await clients.withClient("systemStats") { client in
            let users = try MongoCollection.with(StoredAccount.usage, in: database, client: client) { usage in
                try usage.aggregate(Self.grouped(["status": "finalized"], by: "userId"))
            }
            let balances = try MongoCollection.with(StoredAccount.accounts, in: database, client: client) { accounts in
                try accounts.aggregate([
                    [
                        "$group": [
                            "_id": .null, "accounts": ["$sum": 1], "available": ["$sum": "$available"], "reserved": ["$sum": "$reserved"],
                        ]
                    ]
                ])
            }
            return (users, balances)
        }
        let byUser = try Self.groups(users).sorted { ($0.totals.credits, $1.key) > ($1.totals.credits, $0.key) }
        let balance = balances.first.map { StoredFields($0, in: StoredAccount.accounts) }
        return SystemStats(
            usage: usage, activeUsers: byUser.count, topUsers: Array(byUser.prefix(10)),
            accounts: balance?.optionalInt("accounts") ?? 0, availableCredits: balance?.optionalInt("available") ?? 0,
            reservedCredits: balance?.optionalInt("reserved") ?? 0
        )
    }

    /// `$match` then `$group` by `key`, summing credits, tokens and requests.
    private static func grouped(_ match: BSONFields, by key: String) -> [BSONValue] {
        [
            ["$match": .document(match)],
            [
                "$group": [
                    "_id": .string("$" + key), "credits": ["$sum": "$credits"], "inputTokens": ["$sum": "$inputTokens"],
                    "outputTokens": ["$sum": "$outputTokens"], "tokens": ["$sum": "$tokens"], "requests": ["$sum": 1],
                ]
            ],
        ]
    }

    /// The groups an aggregation returned, sorted by key.
    private static func groups(_ documents: [BSONFields]) throws -> [(key: String, totals: UsageStats.Totals)] {
        try documents.map { document in
            let fields = StoredFields(document, in: StoredAccount.usage)
            let totals = UsageStats.Totals(
                credits: try fields.int("credits"), inputTokens: try fields.int("inputTokens"), outputTokens: try fields.int("outputTokens"),
                tokens: try fields.int("tokens"), requests: try fields.int("requests")
            )
            return (key: fields.optionalString("_id") ?? "unspecified", totals: totals)
        }
        .sorted { $0.key < $1.key }
    }
}

import ChatCore
import Foundation
import Hummingbird

/// `/api/usage`: record usage, and usage statistics (own; any user's for supervisors and admins; the whole
/// system's for admins).
struct UsageController: Sendable {
    let store: AccountStore

    func register(on group: RouterGroup<AccountingRequestContext>) {
        group.post("/record", use: record)
        group.get("/stats", use: ownStats)
        group.get("/stats/:userId", use: userStats)
        group.get("/system-stats", use: systemStats)
    }

    /// `{service?, operation?, credits?, tokens?, inputTokens?, outputTokens?, modelId?}` → 201. `credits`
    /// are debited at once (402 when the balance is below them); tokens alone are only recorded.
    @Sendable func record(_ request: Request, context: AccountingRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let fields = try await RequestFields.body(of: request, context: context)
        let credits = try fields.integer("credits", in: 0...CreditsController.maxAllocation)
        let tokens = try fields.integer("tokens", in: 0...Pricing.maxTokens)
        let input = try fields.integer("inputTokens", in: 0...Pricing.maxTokens)
        let output = try fields.integer("outputTokens", in: 0...Pricing.maxTokens)
        guard credits != nil || tokens != nil || input != nil || output != nil else {
            throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "credits or tokens is required")
        }
        let inputTokens = input ?? 0
        let outputTokens = output ?? max(0, (tokens ?? 0) - inputTokens)
        let now = store.now
        let entry = LedgerEntry(
            id: ObjectID.make(now: now), kind: .record, status: .finalized, sessionID: nil, chatSessionID: try fields.string("sessionId"),
            service: try fields.string("service", maxLength: 100) ?? "chat-service",
            operation: try fields.string("operation", maxLength: 100) ?? "chat", modelID: try fields.string("modelId"),
            estimatedTokens: nil, reservedCredits: 0, held: 0, draws: [], createdAt: now, expiresAt: now,
            settlement: Settlement(
                creditsUsed: credits ?? 0, refund: 0, forfeited: 0, actualCost: credits ?? 0, inputTokens: inputTokens,
                outputTokens: outputTokens, success: true, settledAt: now
            )
        )
        try await store.record(userID: user.id, entry: entry)
        return JSONReply.make(
            .created,
            [
                "id": entry.id, "message": "Usage recorded", "creditsCharged": credits ?? 0, "tokens": inputTokens + outputTokens,
            ] as [String: Any]
        )
    }

    /// The caller's own statistics.
    @Sendable func ownStats(_ request: Request, context: AccountingRequestContext) async throws -> Response {
        let user = try context.requireUser()
        return JSONReply.make(.ok, Self.statsJSON(try await store.usageStats(userID: user.id), userID: user.id))
    }

    /// Another user's statistics: supervisors and admins (anyone for themselves); 403 otherwise.
    @Sendable func userStats(_ request: Request, context: AccountingRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let target = try context.parameters.require("userId")
        guard target == user.id || user.role == .admin || user.role == .supervisor else { throw AccountingErrors.forbidden }
        return JSONReply.make(.ok, Self.statsJSON(try await store.usageStats(userID: target), userID: target))
    }

    /// Everyone's statistics, the heaviest users and the credits across accounts: admins only.
    @Sendable func systemStats(_ request: Request, context: AccountingRequestContext) async throws -> Response {
        _ = try context.requireRole(.admin)
        let stats = try await store.systemStats()
        var body = Self.statsJSON(stats.usage, userID: nil)
        body["activeUsers"] = stats.activeUsers
        body["topUsers"] = stats.topUsers.map { Self.groupJSON($0.totals, key: ("userId", $0.key)) }
        body["accounts"] = [
            "count": stats.accounts, "availableCredits": stats.availableCredits, "reservedCredits": stats.reservedCredits,
        ]
        return JSONReply.make(.ok, body)
    }

    /// Totals first, then the breakdowns by model and by day.
    static func statsJSON(_ stats: UsageStats, userID: String?) -> [String: Any] {
        var body: [String: Any] = [
            "totalCreditsUsed": stats.totals.credits,
            "totalTokens": stats.totals.tokens,
            "totalInputTokens": stats.totals.inputTokens,
            "totalOutputTokens": stats.totals.outputTokens,
            "totalRequests": stats.totals.requests,
            "byModel": stats.byModel.map { groupJSON($0.totals, key: ("modelId", $0.key)) },
            "byDay": stats.byDay.map { groupJSON($0.totals, key: ("date", $0.key)) },
        ]
        if let userID { body["userId"] = userID }
        return body
    }

    private static func groupJSON(_ totals: UsageStats.Totals, key: (String, String)) -> [String: Any] {
        [
            key.0: key.1, "credits": totals.credits, "tokens": totals.tokens, "inputTokens": totals.inputTokens,
            "outputTokens": totals.outputTokens, "requests": totals.requests,
        ]
    }
}

import ChatCore
import Foundation
import Hummingbird

/// `/api/credits`: allocate (admins and supervisors), balance and check (the caller's own).
struct CreditsController: Sendable {
    let store: AccountStore
    /// The most credits one allocation may grant.
    static let maxAllocation = 1_000_000_000

    func register(on group: RouterGroup<AccountingRequestContext>) {
        group.post("/allocate", use: allocate)
        group.get("/balance", use: balance)
        group.get("/check", use: check)
        group.post("/check", use: check)
    }

    /// `{targetUserId, credits, expiryDays?, notes?}` → 201 with the allocation.
    @Sendable func allocate(_ request: Request, context: AccountingRequestContext) async throws -> Response {
        let user = try context.requireRole(.admin, .supervisor)
        let fields = try await RequestFields.body(of: request, context: context)
        let target = try fields.string("targetUserId", required: true)!
        let credits = try fields.integer("credits", required: true, in: 1...Self.maxAllocation)!
        let days = try fields.integer("expiryDays", in: 1...3650) ?? 30
        let notes = try fields.string("notes", maxLength: 1000)
        let allocation = try await store.allocate(to: target, credits: credits, days: days, notes: notes, by: user.id)
        var body = Self.allocationJSON(allocation)
        body["targetUserId"] = target
        body["expiryDays"] = days
        body["message"] = "Allocated \(credits) credits to \(target)"
        return JSONReply.make(.created, body)
    }

    /// → 200 `{totalCredits, reservedCredits, activeAllocations}`: available credits, those held by open
    /// reservations, and the unexpired allocations (earliest expiry first).
    @Sendable func balance(_ request: Request, context: AccountingRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let account = try await store.account(user.id)
        return JSONReply.make(
            .ok,
            [
                "userId": user.id,
                "totalCredits": account.available,
                "reservedCredits": account.reserved,
                "activeAllocations": account.allocations.map(Self.allocationJSON),
            ] as [String: Any]
        )
    }

    /// `credits`, or `estimatedTokens` (+ `modelId`), in the body (POST) or query (GET); neither means 1
    /// credit → 200 `{sufficient, required, available}`.
    @Sendable func check(_ request: Request, context: AccountingRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let fields = request.method == .get ? RequestFields.query(of: request) : try await RequestFields.body(of: request, context: context, optional: true)
        let required: Double
        if let credits = try fields.number("credits") {
            guard credits >= 0 else { throw ChatError(.badRequest, code: "VALIDATION_ERROR", message: "credits must not be negative") }
            required = credits
        } else if let tokens = try fields.integer("estimatedTokens", in: 0...Pricing.maxTokens) {
            required = Double(Pricing.estimate(tokens: tokens, model: try fields.model(in: store.catalog)!))
        } else {
            _ = try fields.model(in: store.catalog)
            required = 1
        }
        let available = try await store.account(user.id).available
        return JSONReply.make(
            .ok, ["sufficient": Double(available) >= required, "required": Self.number(required), "available": available] as [String: Any]
        )
    }

    /// An allocation as the API shows it: `credits` is what remains of it.
    static func allocationJSON(_ allocation: Allocation) -> [String: Any] {
        [
            "id": allocation.id,
            "credits": allocation.remaining,
            "originalCredits": allocation.originalCredits,
            "expiresAt": JSONReply.timestamp(allocation.expiresAt),
            "notes": JSONReply.orNull(allocation.notes),
            "allocatedBy": allocation.allocatedBy,
            "createdAt": JSONReply.timestamp(allocation.createdAt),
        ]
    }

    /// A whole number as an integer, anything else as it is.
    private static func number(_ value: Double) -> Any {
        value.rounded() == value && abs(value) < 1e15 ? Int(value) : value
    }
}

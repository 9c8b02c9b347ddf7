import ChatCore
import ChatState
import Logging
import Queue

/// Settles reservations with the accounting service. A reservation that expired before its settlement (its job
/// outlived the reservation's lifetime, or its settlement waited out a long accounting outage) settles nothing
/// by itself: the tokens are then charged by a late reservation made and finalized under a derived id
/// (`<reservation>:late`). Both calls are idempotent per id at the service, so a retry never charges twice.
/// Each such case is counted (`chat:stats`, field `settlementsExpired`) and logged.
struct Settler: Sendable {
    static let statsKey = "chat:stats"
    let ledger: any CreditLedger
    let signer: UserTokenSigner
    let redis: RedisClient
    let logger: Logger
    /// Prices for the `undercharged` check.
    var catalog: ModelCatalog = .builtIn

    /// Settles `settlement`; throws what the accounting service's calls throw (`.unavailable`: retry later).
    /// What the first settlement of a reservation charged and refunded is added to the credit metrics.
    func settle(_ settlement: PendingSettlement) async throws -> CreditSettlement {
        let settled = try await settleOnce(settlement)
        await count(settled, of: settlement)
        return settled
    }

    /// Counts a settlement in `chat_credits_charged_total` and `chat_credits_refunded_total` if it is the first of
    /// its reservation to land (a marker set once in Redis): a retried or repeated settlement answers again with
    /// the same amounts and must not count twice. Without Redis it is not counted (the ledger stays exact).
    private func count(_ settled: CreditSettlement, of settlement: PendingSettlement) async {
        guard !settled.unknownReservation else { return }
        let key = "chat:settled:\(settlement.reservationID)"
        guard let first = try? await redis.send("SET", key, "1", "NX", "EX", "604800"), first.string == "OK" else { return }
        ChatMetrics.creditsSettled(model: settlement.modelID, charged: settled.creditsUsed, refunded: settled.refund)
        if let reason = Self.mismatch(settled, of: settlement, catalog: catalog) {
            ChatMetrics.settlementMismatch(reason: reason)
            logger.error(
                "the accounting service settled a reservation differently from what was reported",
                metadata: [
                    "reason": "\(reason)", "reservation": "\(settlement.reservationID)", "userId": "\(settlement.userID)",
                    "reportedTokens": "\(settlement.inputTokens)+\(settlement.outputTokens)",
                    "settledTokens": "\(settled.inputTokens.map(String.init) ?? "?")+\(settled.outputTokens.map(String.init) ?? "?")",
                    "charged": "\(settled.creditsUsed)",
                ]
            )
        }
    }

    /// Why `settled` disagrees with `settlement` (one of `ChatMetrics.settlementMismatchReasons`), or nil when it
    /// agrees: other token counts than reported, when the service names them, or fewer credits charged than the
    /// reported tokens cost at the catalog's prices (a balance that ran dry also shows here).
    static func mismatch(_ settled: CreditSettlement, of settlement: PendingSettlement, catalog: ModelCatalog = .builtIn) -> String? {
        if !settled.expired, let input = settled.inputTokens, let output = settled.outputTokens,
            input != settlement.inputTokens || output != settlement.outputTokens
        {
            return "tokens"
        }
        if let model = catalog.model(id: settlement.modelID), !settled.expired,
            settled.creditsUsed < Double(model.creditCost(inputTokens: settlement.inputTokens, outputTokens: settlement.outputTokens))
        {
            return "undercharged"
        }
        return nil
    }

    private func settleOnce(_ settlement: PendingSettlement) async throws -> CreditSettlement {
        let token = signer.token(for: settlement.userID)
        let settled = try await ledger.finalize(
            reservationID: settlement.reservationID, modelID: settlement.modelID, inputTokens: settlement.inputTokens,
            outputTokens: settlement.outputTokens, success: settlement.success, token: token
        )
        let tokens = settlement.inputTokens + settlement.outputTokens
        guard settled.expired, tokens > 0 else { return settled }
        _ = try? await redis.send("HINCRBY", Self.statsKey, "settlementsExpired", "1")
        logger.warning(
            "a reservation expired before its settlement; charging its tokens late",
            metadata: ["reservation": "\(settlement.reservationID)", "tokens": "\(tokens)"]
        )
        let late = settlement.reservationID + ":late"
        do {
            _ = try await ledger.reserve(
                reservationID: late, sessionID: settlement.sessionID ?? settlement.reservationID, modelID: settlement.modelID,
                estimatedTokens: tokens, token: token
            )
        } catch let error as ChatError where error.kind == .paymentRequired {
            logger.error("the late charge was refused: the user has no credits left", metadata: ["reservation": "\(settlement.reservationID)"])
            _ = try? await redis.send("HINCRBY", Self.statsKey, "lateChargesRefused", "1")
            return settled
        } catch {
            // A late reservation made and finalized by an earlier try is refused as a duplicate: its finalize
            // answers again. One that does not exist yet is retried later.
            let again = try await ledger.finalize(
                reservationID: late, modelID: settlement.modelID, inputTokens: settlement.inputTokens, outputTokens: settlement.outputTokens,
                success: settlement.success, token: token
            )
            if again.unknownReservation { throw error }
            return again
        }
        return try await ledger.finalize(
            reservationID: late, modelID: settlement.modelID, inputTokens: settlement.inputTokens, outputTokens: settlement.outputTokens,
            success: settlement.success, token: token
        )
    }
}

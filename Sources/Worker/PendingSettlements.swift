import ChatCore
import ChatState
import Foundation
import Logging
import Queue
import ServiceLifecycle

/// Settlements kept in Redis (`chat:settlements:pending`, one field per reservation) until the accounting
/// service takes them, so that an accounting outage at the end of a job loses no credit and does not make the
/// job generate its reply again. Retried every `interval` by every worker; settling is idempotent.
struct PendingSettlements: Service {
    static let key = GenerationState.pendingSettlementsKey
    let redis: RedisClient
    let ledger: any CreditLedger
    let signer: AccessTokenVerifier
    let interval: Duration
    let logger: Logger

    /// Keeps a settlement for later.
    func add(_ settlement: PendingSettlement) async throws {
        let json = String(decoding: try JSONEncoder().encode(settlement), as: UTF8.self)
        try await redis.hset(Self.key, [(settlement.reservationID, json)])
    }

    /// Tries every kept settlement once; returns how many the accounting service took.
    @discardableResult
    func retry() async -> Int {
        guard let kept = try? await redis.hgetall(Self.key) else { return 0 }
        var settled = 0
        for (reservationID, json) in kept {
            guard let pending = try? JSONDecoder().decode(PendingSettlement.self, from: Data(json.utf8)) else {
                _ = try? await redis.send("HDEL", Self.key, reservationID)
                continue
            }
            do {
                _ = try await ledger.finalize(
                    reservationID: pending.reservationID, modelID: pending.modelID, inputTokens: pending.inputTokens,
                    outputTokens: pending.outputTokens, success: pending.success, token: signer.sign(userID: pending.userID, role: .enduser, lifetime: 300)
                )
                _ = try await redis.send("HDEL", Self.key, reservationID)
                settled += 1
            } catch {
                logger.warning("a pending settlement is still not accepted", metadata: ["reservation": "\(reservationID)", "error": "\(error)"])
            }
        }
        return settled
    }

    /// Retries kept settlements every `interval` until shutdown.
    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                await retry()
            }
        }
    }
}

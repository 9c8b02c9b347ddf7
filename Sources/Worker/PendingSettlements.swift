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
    let signer: UserTokenSigner
    let interval: Duration
    let logger: Logger
    /// How long a settlement may keep failing before it is given up, whatever the number of workers retrying.
    var maxAge: Duration = .seconds(86_400)
    /// Prices for the settlement checks.
    var catalog: ModelCatalog = .builtIn
    /// Where kept settlements wait, and where given-up ones go (tests use keys of their own).
    var pendingKey = Self.key
    var failedKey = GenerationState.failedSettlementsKey

    /// Keeps a settlement for later.
    func add(_ settlement: PendingSettlement) async throws {
        try await keep(settlement, in: pendingKey)
    }

    /// Tries every kept settlement once; returns how many the accounting service took. Each settlement is tried
    /// by one worker at a time (a claim of its own in Redis). One the service refuses for good (403, another
    /// 4xx) or that kept failing for `maxAge` is given up: moved to `chat:settlements:failed` with its last
    /// error, logged as an error and counted (`chat:stats`, `settlementsFailed`).
    @discardableResult
    func retry() async -> Int {
        guard let kept = try? await redis.hgetall(pendingKey) else { return 0 }
        var settled = 0
        for reservationID in kept.keys {
            let claim = pendingKey + ":claim:" + reservationID
            guard (try? await redis.send("SET", claim, "1", "NX", "PX", "60000").string) == "OK" else { continue }
            // Read again under the claim: another worker may have settled or updated it meanwhile.
            if let json = try? await redis.send("HGET", pendingKey, reservationID).string, await retry(reservationID: reservationID, json: json) {
                settled += 1
            }
            _ = try? await redis.send("DEL", claim)
        }
        return settled
    }

    /// Tries one kept settlement (claimed by this worker); true when the accounting service took it.
    private func retry(reservationID: String, json: String) async -> Bool {
        guard var pending = try? PendingSettlement(json: json) else {
            _ = try? await redis.send("HDEL", pendingKey, reservationID)
            return false
        }
        do {
            _ = try await Settler(ledger: ledger, signer: signer, redis: redis, logger: logger, catalog: catalog).settle(pending)
            _ = try await redis.send("HDEL", pendingKey, reservationID)
            return true
        } catch {
            let now = Date().timeIntervalSince1970
            pending.tries = (pending.tries ?? 0) + 1
            pending.firstFailedAt = pending.firstFailedAt ?? now
            pending.lastError = "\(error)"
            let retryable = (error as? ChatError).map { $0.kind == .unavailable || $0.kind == .unauthorized } ?? true
            if retryable && now - (pending.firstFailedAt ?? now) < Double(maxAge.components.seconds) {
                logger.warning("a pending settlement is still not accepted", metadata: ["reservation": "\(reservationID)", "error": "\(error)"])
                try? await keep(pending, in: pendingKey)
            } else {
                logger.error("a settlement was given up; it needs an operator", metadata: ["reservation": "\(reservationID)", "error": "\(error)"])
                await giveUp(pending)
            }
            return false
        }
    }

    /// Moves a settlement to the failed ones and counts it.
    func giveUp(_ settlement: PendingSettlement) async {
        do {
            try await keep(settlement, in: failedKey)
            _ = try await redis.send("HDEL", pendingKey, settlement.reservationID)
            _ = try await redis.send("HINCRBY", Settler.statsKey, "settlementsFailed", "1")
        } catch {
            logger.error("could not give a settlement up", metadata: ["reservation": "\(settlement.reservationID)", "error": "\(error)"])
        }
    }

    private func keep(_ settlement: PendingSettlement, in key: String) async throws {
        try await redis.hset(key, [(settlement.reservationID, try settlement.json())])
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

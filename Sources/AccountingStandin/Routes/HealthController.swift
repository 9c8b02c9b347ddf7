import Hummingbird

/// `/health` and `/api/health`, open to anyone: 200 `{"status":"ok","service":"accounting-service"}` when
/// MongoDB answers, 503 otherwise.
struct HealthController: Sendable {
    let store: AccountStore

    func register(on router: Router<AccountingRequestContext>) {
        router.get("/health", use: health)
        router.get("/api/health", use: health)
    }

    @Sendable func health(_ request: Request, context: AccountingRequestContext) async throws -> Response {
        do {
            try await store.ping()
            return JSONReply.make(.ok, ["status": "ok", "service": "accounting-service"])
        } catch {
            return JSONReply.make(.serviceUnavailable, ["status": "unavailable", "service": "accounting-service"])
        }
    }
}

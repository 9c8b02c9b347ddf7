import ChatCore
import Foundation
import Hummingbird
import Queue

/// `/livez`, `/readyz` and `/api/health`: liveness, and readiness that checks Redis and MongoDB.
struct HealthController: Sendable {
    let redis: RedisClient
    let store: any SessionStore
    let timeout: Duration
    let startedAt = Date()

    func register(on router: some RouterMethods<ChatRequestContext>) {
        router.get("/livez") { _, _ in Response.json(status: .ok, HealthBody(status: "ok")) }
        router.get("/readyz") { _, _ in
            let dependencies = await checkDependencies()
            let ready = dependencies.values.allSatisfy { $0 == "ok" }
            return Response.json(status: ready ? .ok : .serviceUnavailable, HealthBody(status: ready ? "ok" : "unavailable", dependencies: dependencies))
        }
        router.get("/api/health") { _, _ in
            let dependencies = await checkDependencies()
            let healthy = dependencies.values.allSatisfy { $0 == "ok" }
            return Response.json(
                status: healthy ? .ok : .serviceUnavailable,
                HealthBody(
                    status: healthy ? "ok" : "degraded", service: "chat-service", version: ServiceInfo.version,
                    uptimeSeconds: Int(Date().timeIntervalSince(startedAt)), timestamp: ISO8601DateFormatter().string(from: Date()),
                    dependencies: dependencies
                )
            )
        }
    }

    /// Each dependency's state, `ok` or `down`, checked at once and each bounded by the health timeout.
    func checkDependencies() async -> [String: String] {
        async let redisUp = withinTimeout { _ = try await redis.ping() }
        async let mongoUp = withinTimeout { try await store.ping() }
        return ["redis": await redisUp ? "ok" : "down", "mongodb": await mongoUp ? "ok" : "down"]
    }

    private func withinTimeout(_ check: @escaping @Sendable () async throws -> Void) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await check()) != nil }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}

/// Facts about the running build.
enum ServiceInfo {
    /// The service version reported by /api/health.
    static let version = "0.1.0"
}

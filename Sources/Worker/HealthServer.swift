import Hummingbird
import Logging
import Queue
import Telemetry

/// chat-worker's small HTTP port (`WORKER_METRICS_PORT`): `/livez` (the process's event loops answer: the
/// liveness probe), `/readyz` (Redis answers within a second: the worker can take jobs) and `/metrics`.
enum HealthServer {
    /// The application serving the three routes on `host`:`port` (port 0: a free port, logged once bound).
    static func application(host: String, port: Int, redis: RedisClient, logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        router.get("/livez") { _, _ in Self.status("ok") }
        router.get("/readyz") { _, _ -> Response in
            let ready = await withTaskGroup(of: Bool.self) { group in
                group.addTask { (try? await redis.ping()) != nil }
                group.addTask {
                    try? await Task.sleep(for: .seconds(1))
                    return false
                }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
            return ready ? Self.status("ok") : Self.status("unavailable", .serviceUnavailable)
        }
        router.addMetricsRoute()
        return Application(
            router: MeteredRouter(router),
            configuration: .init(address: .hostname(host, port: port), serverName: "chat-worker"),
            onServerRunning: { channel in
                logger.info("health and metrics served", metadata: ["port": "\(channel.localAddress?.port ?? port)"])
            },
            logger: logger
        )
    }

    private static func status(_ text: String, _ status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"status":"\#(text)"}"#)))
    }
}

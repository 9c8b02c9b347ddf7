import Hummingbird
import Logging
import Telemetry

/// Builds bedrock-emulator: the invocation routes, the health and reset routes, and the server.
func buildApplication(configuration: EmulatorConfiguration) -> some ApplicationProtocol {
    let logger = Logger(label: "bedrock-emulator")
    return Application(
        router: MeteredRouter(buildRouter(configuration: configuration, counters: FaultCounters())),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "bedrock-emulator"),
        logger: logger
    )
}

/// The emulator's routes behind the request-id middleware; tests call it with their own configuration.
func buildRouter(configuration: EmulatorConfiguration, counters: FaultCounters) -> Router<BasicRequestContext> {
    let router = Router()
    router.add(middleware: RequestIDMiddleware())
    router.addMetricsRoute()
    router.get("/emulator/health") { _, _ in
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"status":"ok","service":"bedrock-emulator"}"#))
        )
    }
    router.post("/emulator/reset") { _, _ in
        await counters.reset()
        return Response(status: .noContent)
    }
    InvocationController(
        configuration: configuration, signatureCheck: SignatureCheck(configuration: configuration), counters: counters,
        directory: ModelDirectory(catalog: configuration.catalog)
    )
        .register(on: router)
    return router
}

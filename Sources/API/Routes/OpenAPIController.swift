import ChatCore
import Foundation
import Hummingbird
import Logging

/// `GET /openapi.json`: the OpenAPI 3.1 document of this API (`Sources/API/Resources/openapi.json`, shipped as
/// the target's resource bundle beside the executable), read once at start.
struct OpenAPIController: Sendable {
    let document: ByteBuffer?

    /// The document from the resource bundle next to the executable; nil (and a warning) when it is missing.
    init(logger: Logger = Logger(label: "chat-api.openapi")) {
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [
            ProcessInfo.processInfo.environment["OPENAPI_DOCUMENT_PATH"].map { URL(fileURLWithPath: $0) },
            executable.appendingPathComponent("chat-service_API.resources/openapi.json"),
            Bundle.main.bundleURL.appendingPathComponent("chat-service_API.resources/openapi.json"),
        ].compactMap { $0 }
        document = candidates.lazy.compactMap { try? Data(contentsOf: $0) }.first.map { ByteBuffer(bytes: $0) }
        if document == nil {
            logger.warning("the OpenAPI document was not found beside the executable; /openapi.json answers 503")
        }
    }

    func register(on router: some RouterMethods<ChatRequestContext>) {
        router.get("/openapi.json") { _, _ -> Response in
            guard let document else {
                throw ChatError(.unavailable, code: "OPENAPI_MISSING", message: "The OpenAPI document is not installed with this server")
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: document))
        }
    }
}

import ChatCore
import Foundation
import Hummingbird
import Logging

/// `GET /openapi.json`: the OpenAPI 3.1 document of this API (`Sources/API/Resources/openapi.json`, shipped as
/// the target's resource bundle beside the executable, where SwiftPM and the image put it), read once at start.
struct OpenAPIController: Sendable {
    let document: ByteBuffer?

    /// The document from the resource bundle in the executable's own folder (found from the running executable,
    /// never from the working directory or the command line); nil (and a warning) when it is missing or is not
    /// an OpenAPI document.
    init(logger: Logger = Logger(label: "chat-api.openapi")) {
        let url = Bundle.main.bundleURL.appendingPathComponent("chat-service_API.resources/openapi.json")
        if let data = try? Data(contentsOf: url),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], object["openapi"] is String
        {
            document = ByteBuffer(bytes: data)
        } else {
            document = nil
            logger.warning("no OpenAPI document beside the executable; /openapi.json answers 503", metadata: ["path": "\(url.path)"])
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

import HTTPTypes
import Hummingbird

/// Wraps chat-api's router in the in-process tests: the response to a request carrying `X-Test-Unsent: 1` is
/// dropped unsent, its body released without running, as the server drops it when the client hung up before the
/// head was written. The client gets `204` with the dropped response's status in `X-Test-Dropped-Status`. It wraps
/// `ExchangeRecorder`, so the OpenAPI check sees neither that `204` nor the response dropped (its body never ran).
struct UnsentResponses<Builder: HTTPResponderBuilder>: HTTPResponderBuilder {
    let builder: Builder

    init(_ builder: Builder) {
        self.builder = builder
    }

    func buildResponder() -> Responder {
        Responder(wrapped: builder.buildResponder())
    }

    /// The responder `UnsentResponses` builds.
    struct Responder: HTTPResponder {
        let wrapped: Builder.Responder

        func respond(to request: Request, context: Builder.Responder.Context) async throws -> Response {
            let response = try await wrapped.respond(to: request, context: context)
            guard request.headers[.testUnsent] == "1" else { return response }
            return Response(status: .noContent, headers: [.testDroppedStatus: String(response.status.code)])
        }
    }
}

extension HTTPField.Name {
    /// Asks `UnsentResponses` to drop the response unsent.
    static let testUnsent = HTTPField.Name("X-Test-Unsent")!
    /// The status of the response `UnsentResponses` dropped.
    static let testDroppedStatus = HTTPField.Name("X-Test-Dropped-Status")!
}

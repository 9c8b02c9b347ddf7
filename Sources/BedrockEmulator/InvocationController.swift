import ChatCore
import Foundation
import Hummingbird
import SigV4

/// Serves InvokeModel and InvokeModelWithResponseStream for every model of `ModelCatalog`, in the order Bedrock
/// checks a request: signature, model, body, then the faults the prompt asks for.
struct InvocationController: Sendable {
    /// Bedrock Runtime refuses bodies above 25,000,000 bytes.
    static let maximumBodySize = 25_000_000

    var configuration: EmulatorConfiguration
    var signatureCheck: SignatureCheck
    var counters: FaultCounters

    /// Adds the two operations' routes to `router`.
    func register<Context: RequestContext>(on router: Router<Context>) {
        router.post("/model/:modelId/invoke") { request, context in
            await respond(to: request, context: context, streaming: false)
        }
        router.post("/model/:modelId/invoke-with-response-stream") { request, context in
            await respond(to: request, context: context, streaming: true)
        }
    }

    /// The answer to one invocation; every failure becomes the AWS error response it stands for.
    func respond(to request: Request, context: some RequestContext, streaming: Bool) async -> Response {
        do {
            return try await invocation(request, rawModelID: context.parameters.get("modelId") ?? "", streaming: streaming)
        } catch {
            context.logger.debug("answering with an error", metadata: ["code": "\(error.code)", "status": "\(error.status)"])
            return error.response
        }
    }

    private func invocation(_ request: Request, rawModelID: String, streaming: Bool) async throws(ServiceError) -> Response {
        let start = ContinuousClock.now
        let body: [UInt8]
        do {
            body = Array(try await request.body.collect(upTo: Self.maximumBodySize).readableBytesView)
        } catch {
            throw .validation("The request body is larger than \(Self.maximumBodySize) bytes.")
        }
        let bodySHA256 = SigV4Signer.sha256Hex(of: body)
        if let failure = signatureCheck.failure(of: request, bodySHA256: bodySHA256) {
            throw failure
        }
        guard let model = Self.model(rawID: rawModelID) else { throw .resourceNotFound }
        let prompt = try ModelPrompt(body: body, model: model)
        let markers = try FaultMarkers(parsing: prompt.seedText)

        if let delay = markers.slowFirstByte {
            try? await Task.sleep(for: delay)
        }
        for fault in FaultMarkers.CountedFault.allCases {
            if let limit = markers.counted[fault], await counters.shouldFail(fault, bodySHA256: bodySHA256, limit: limit) {
                throw fault.error
            }
        }
        let reply = Reply(prompt: prompt, wanted: markers.replyTokens ?? configuration.replyTokens)
        let pace = ReplyTiming(
            tokensPerSecond: markers.tokensPerSecond ?? configuration.tokensPerSecond, stall: markers.stall, start: start
        )
        if streaming {
            return streamResponse(reply, model: model, timing: pace, exception: markers.exception)
        }
        if let exception = markers.exception {
            throw exception.type.invokeError(modelARN: "arn:aws:bedrock:\(configuration.region)::foundation-model/\(model.id)")
        }
        try? await Task.sleep(for: pace.generationTime(words: reply.outputTokens))
        return invokeResponse(reply, model: model, timing: pace)
    }

    /// The model a path segment names: percent-decoded (`%3A` is `:`), either a model id or a foundation-model ARN.
    static func model(rawID: String) -> ModelInfo? {
        guard var id = rawID.removingPercentEncoding else { return nil }
        if id.hasPrefix("arn:"), let slash = id.range(of: ":foundation-model/") {
            id = String(id[slash.upperBound...])
        }
        return ModelCatalog.model(id: id)
    }

    private func invokeResponse(_ reply: Reply, model: ModelInfo, timing: ReplyTiming) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.bedrockInputTokenCount] = String(reply.inputTokens)
        headers[.bedrockOutputTokenCount] = String(reply.outputTokens)
        headers[.bedrockInvocationLatency] = String(timing.elapsedMilliseconds())
        let body = ReplyBodies.invokeBody(reply, model: model).serialized
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    private func streamResponse(
        _ reply: Reply, model: ModelInfo, timing: ReplyTiming, exception: (afterTextChunks: Int, type: StreamException)?
    ) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/vnd.amazon.eventstream"
        headers[.bedrockContentType] = "application/json"
        let stream = ReplyStream(
            chunks: ReplyBodies.chunks(reply, model: model), inputTokens: reply.inputTokens, outputTokens: reply.outputTokens,
            timing: timing, exception: exception
        )
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in try await stream.write(to: &writer) })
    }
}

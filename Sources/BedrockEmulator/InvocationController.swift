import ChatCore
import Foundation
import Hummingbird
import SigV4

/// Serves InvokeModel, InvokeModelWithResponseStream, Converse and ConverseStream for every model of
/// `ModelCatalog`, in the order Bedrock checks a request: signature, model, body, then the faults the prompt asks
/// for. The two APIs give the same deterministic reply to the same conversation.
struct InvocationController: Sendable {
    /// Bedrock Runtime refuses bodies above 25,000,000 bytes.
    static let maximumBodySize = 25_000_000

    var configuration: EmulatorConfiguration
    var signatureCheck: SignatureCheck
    var counters: FaultCounters
    /// The models served, by the ids Bedrock takes.
    var directory: ModelDirectory

    /// The operations, by their request's shape and their answer's.
    enum Operation: Sendable {
        case invoke, invokeStream, converse, converseStream

        var streaming: Bool { self == .invokeStream || self == .converseStream }
        var isConverse: Bool { self == .converse || self == .converseStream }
    }

    /// Adds the four operations' routes to `router`.
    func register<Context: RequestContext>(on router: Router<Context>) {
        let routes: [(String, Operation)] = [
            ("invoke", .invoke), ("invoke-with-response-stream", .invokeStream), ("converse", .converse), ("converse-stream", .converseStream),
        ]
        for (path, operation) in routes {
            router.post("/model/:modelId/\(path)") { request, context in
                await respond(to: request, context: context, operation: operation)
            }
        }
    }

    /// The answer to one invocation; every failure becomes the AWS error response it stands for.
    func respond(to request: Request, context: some RequestContext, operation: Operation) async -> Response {
        do {
            return try await invocation(request, rawModelID: context.parameters.get("modelId") ?? "", operation: operation)
        } catch {
            context.logger.debug("answering with an error", metadata: ["code": "\(error.code)", "status": "\(error.status)"])
            return error.response
        }
    }

    private func invocation(_ request: Request, rawModelID: String, operation: Operation) async throws(ServiceError) -> Response {
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
        let model = try directory.model(rawID: rawModelID)
        let prompt = operation.isConverse ? try ModelPrompt(converseBody: body, model: model) : try ModelPrompt(body: body, model: model)
        let markers = try FaultMarkers(parsing: prompt.seedText)

        if let delay = markers.slowFirstByte {
            try? await Task.sleep(for: delay)
        }
        let requestedID = rawModelID.removingPercentEncoding ?? rawModelID
        let region = Self.signedRegion(request)
        if let targeted = markers.targeted.first(where: { $0.matches(modelID: requestedID, region: region) }) {
            throw targeted.fault.error
        }
        for fault in FaultMarkers.CountedFault.allCases {
            if let limit = markers.counted[fault], await counters.shouldFail(fault, bodySHA256: bodySHA256, limit: limit) {
                throw fault.error
            }
        }
        let reply = markers.echoSettings ? Reply(echoing: prompt) : Reply(prompt: prompt, wanted: markers.replyTokens ?? configuration.replyTokens)
        let pace = ReplyTiming(
            tokensPerSecond: markers.tokensPerSecond ?? configuration.tokensPerSecond, stall: markers.stall, start: start
        )
        if operation.streaming {
            return streamResponse(reply, model: model, timing: pace, exception: markers.exception, converse: operation.isConverse)
        }
        if let exception = markers.exception {
            throw exception.type.invokeError(modelARN: "arn:aws:bedrock:\(configuration.region)::foundation-model/\(model.id)")
        }
        try? await Task.sleep(for: pace.generationTime(words: reply.outputTokens))
        return operation.isConverse ? converseResponse(reply, timing: pace) : invokeResponse(reply, model: model, timing: pace)
    }


    /// The region of the `Authorization` header's credential scope (`Credential=AKID/date/region/service/aws4_request`).
    static func signedRegion(_ request: Request) -> String? {
        guard let authorization = request.headers[.authorization], let start = authorization.range(of: "Credential=") else { return nil }
        let scope = authorization[start.upperBound...].prefix { $0 != "," && $0 != " " }.split(separator: "/")
        return scope.count >= 3 ? String(scope[2]) : nil
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

    private func converseResponse(_ reply: Reply, timing: ReplyTiming) -> Response {
        let body = ConverseBodies.response(reply, latencyMs: timing.elapsedMilliseconds()).serialized
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    private func streamResponse(
        _ reply: Reply, model: ModelInfo, timing: ReplyTiming, exception: (afterTextChunks: Int, type: StreamException)?, converse: Bool
    ) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/vnd.amazon.eventstream"
        if !converse { headers[.bedrockContentType] = "application/json" }
        let stream = ReplyStream(
            chunks: converse ? ConverseBodies.events(reply) : ReplyBodies.chunks(reply, model: model), converse: converse ? reply : nil,
            inputTokens: reply.inputTokens, outputTokens: reply.outputTokens, timing: timing, exception: exception
        )
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in try await stream.write(to: &writer) })
    }
}

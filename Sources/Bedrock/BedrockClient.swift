import AsyncHTTPClient
import ChatCore
import EventStream
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SigV4
import Tracing

/// A whole InvokeModel answer.
public struct InvokeModelResponse: Sendable {
    /// The model's JSON body.
    public var body: Data
    public var requestID: String?
    /// `X-Amzn-Bedrock-Input-Token-Count` / `-Output-Token-Count`.
    public var headerUsage: TokenUsage
    /// How many tries it took (1 = no retry).
    public var attempts: Int
}

/// Calls Bedrock Runtime's InvokeModel and InvokeModelWithResponseStream, SigV4-signed, with timeouts and
/// retries (throttling, model not ready, 5xx, failed connections) that happen only before the first chunk.
public final class BedrockClient: Sendable {
    /// The endpoint and timings in use.
    public let configuration: BedrockConfiguration
    let credentials: any CredentialProvider
    let httpClient: HTTPClient
    let logger: Logger
    private let retries = NIOLockedValueBox(0)

    /// How many retries this client has made in all (for metrics and tests).
    public var retryCount: Int { retries.withLockedValue { $0 } }

    /// A client over `httpClient` (whose lifetime the caller owns).
    public init(configuration: BedrockConfiguration, credentials: any CredentialProvider, httpClient: HTTPClient, logger: Logger = Logger(label: "bedrock")) {
        self.configuration = configuration
        self.credentials = credentials
        self.httpClient = httpClient
        self.logger = logger
    }

    /// An HTTP client configured for Bedrock: the connect timeout, and a read timeout as a backstop behind
    /// the client's own first-byte and between-chunk timeouts.
    public static func makeHTTPClient(configuration: BedrockConfiguration) -> HTTPClient {
        var settings = HTTPClient.Configuration()
        settings.timeout = .init(
            connect: TimeAmount(duration: configuration.connectTimeout),
            read: TimeAmount(duration: max(configuration.firstByteTimeout, configuration.chunkTimeout) + .seconds(5))
        )
        settings.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: configuration.maxConnections)
        settings.httpVersion = .automatic
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
    }

    /// Tries per call for the calls made inside `BedrockClient.$attemptLimit.withValue(_:)`, when fewer than the
    /// configuration's `maxAttempts`: a model with a fallback gives up sooner and lets the next model answer.
    @TaskLocal public static var attemptLimit: Int?

    /// InvokeModel: the whole answer at once.
    public func invokeModel(modelID: String, region: String? = nil, body: Data) async throws -> InvokeModelResponse {
        try await whole(modelID: modelID, region: region, action: "invoke", body: body)
    }

    /// Converse: the whole answer at once, in the Converse API's shape.
    public func converse(modelID: String, region: String? = nil, body: Data) async throws -> InvokeModelResponse {
        try await whole(modelID: modelID, region: region, action: "converse", body: body)
    }

    private func whole(modelID: String, region: String?, action: String, body: Data) async throws -> InvokeModelResponse {
        var random = SystemRandomNumberGenerator()
        var attempt = 1
        while true {
            do {
                let response = try await send(modelID: modelID, region: region, action: action, body: body, streaming: false)
                let bytes = try await withTimeLimit(configuration.chunkTimeout, error: { BedrockError(code: "ChunkTimeout", message: "the response body stalled") }) {
                    try await response.body.collect(upTo: 64 * 1024 * 1024)
                }
                let headerUsage = TokenUsage(
                    inputTokens: response.headers.first(name: "X-Amzn-Bedrock-Input-Token-Count").flatMap { Int($0) },
                    outputTokens: response.headers.first(name: "X-Amzn-Bedrock-Output-Token-Count").flatMap { Int($0) }
                )
                return InvokeModelResponse(
                    body: Data(buffer: bytes), requestID: response.headers.first(name: "x-amzn-RequestId"), headerUsage: headerUsage, attempts: attempt
                )
            } catch let error as BedrockError where error.isRetryable && attempt < min(Self.attemptLimit ?? configuration.maxAttempts, configuration.maxAttempts) {
                try await pause(beforeRetry: attempt, after: error, random: &random)
                attempt += 1
            }
        }
    }

    /// InvokeModelWithResponseStream: the model's chunks as they come, with backpressure. Retries happen
    /// while opening the stream and on an exception before the first chunk; never after a chunk was handed out.
    public func invokeModelWithResponseStream(modelID: String, region: String? = nil, body: Data) async throws -> BedrockResponseStream {
        try await stream(modelID: modelID, region: region, action: "invoke-with-response-stream", body: body)
    }

    /// ConverseStream: the answer's events as they come (`{"<event type>": <payload>}` each), with the same
    /// backpressure and retries as `invokeModelWithResponseStream`.
    public func converseStream(modelID: String, region: String? = nil, body: Data) async throws -> BedrockResponseStream {
        try await stream(modelID: modelID, region: region, action: "converse-stream", body: body)
    }

    private func stream(modelID: String, region: String?, action: String, body: Data) async throws -> BedrockResponseStream {
        var random = SystemRandomNumberGenerator()
        var attempt = 1
        while true {
            do {
                let response = try await send(modelID: modelID, region: region, action: action, body: body, streaming: true)
                let stream = BedrockResponseStream(
                    response: response, requestID: response.headers.first(name: "x-amzn-RequestId"),
                    chunkTimeout: configuration.chunkTimeout, attempts: attempt, eventLoop: httpClient.eventLoopGroup.any(),
                    typedEvents: action == "converse-stream"
                )
                // Read up to the first chunk here, so that an exception before it can still be retried.
                try await stream.prefetchFirstChunk(timeout: configuration.firstByteTimeout)
                return stream
            } catch let error as BedrockError where error.isRetryable && attempt < min(Self.attemptLimit ?? configuration.maxAttempts, configuration.maxAttempts) {
                try await pause(beforeRetry: attempt, after: error, random: &random)
                attempt += 1
            }
        }
    }

    private func pause(beforeRetry attempt: Int, after error: BedrockError, random: inout SystemRandomNumberGenerator) async throws {
        let delay = Backoff(base: configuration.baseBackoff, maximum: configuration.maxBackoff).delay(beforeRetry: attempt, using: &random)
        retries.withLockedValue { $0 += 1 }
        ChatMetrics.bedrockRetry(exception: error.code)
        logger.info("retrying Bedrock call", metadata: ["code": "\(error.code)", "attempt": "\(attempt + 1)", "delay": "\(delay)"])
        try await Task.sleep(for: delay)
    }

    /// Signs and sends one request; a non-200 answer is thrown as a `BedrockError` read from its headers and body.
    /// Sends the call inside a client span (recorded in the OTLP build); the job's trace continues into it through
    /// `traceparent` (not signed: a proxy may rewrite it).
    private func send(modelID: String, region: String?, action: String, body: Data, streaming: Bool) async throws -> HTTPClientResponse {
        try await withSpan("Bedrock \(action)", ofKind: .client) { span in
            span.attributes["rpc.system"] = "aws-api"
            span.attributes["rpc.service"] = "BedrockRuntime"
            span.attributes["aws.bedrock.model_id"] = modelID
            let response = try await sendSigned(
                modelID: modelID, region: region ?? configuration.region, action: action, body: body, streaming: streaming,
                traceparent: TraceContext.outgoingTraceparent()
            )
            span.attributes["http.response.status_code"] = Int(response.status.code)
            return response
        }
    }

    private func sendSigned(
        modelID: String, region: String, action: String, body: Data, streaming: Bool, traceparent: String?
    ) async throws -> HTTPClientResponse {
        let path = "/model/\(Self.percentEncode(modelID))/\(action)"
        let url = configuration.baseURL(region: region) + path
        guard let components = URLComponents(string: url), let host = components.host else {
            throw BedrockError(code: "InvalidEndpoint", message: "\(configuration.baseURL) is not a valid endpoint")
        }
        let hostHeader = components.port.map { "\(host):\($0)" } ?? host
        var headers: [(String, String)] = [
            ("host", hostHeader),
            ("content-type", "application/json"),
            (streaming ? "x-amzn-bedrock-accept" : "accept", "application/json"),
        ]
        let credentials: AWSCredentials
        do {
            credentials = try await self.credentials.credentials()
        } catch {
            throw BedrockError(code: "CredentialsError", message: "\(error)")
        }
        let signer = SigV4Signer(credentials: credentials, region: region, service: "bedrock")
        let signature = signer.sign(method: "POST", path: path, headers: headers.map { (name: $0.0, value: $0.1) }, body: body, date: Date())
        headers += signature.headers.map { ($0.name, $0.value) }

        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers where name != "host" { request.headers.add(name: name, value: value) }
        if let traceparent { request.headers.add(name: "traceparent", value: traceparent) }
        request.body = .bytes(ByteBuffer(data: body))

        let prepared = request
        let response: HTTPClientResponse
        do {
            response = try await withTimeLimit(
                configuration.firstByteTimeout,
                error: { BedrockError(code: "FirstByteTimeout", message: "Bedrock did not answer within the first-byte timeout") }
            ) { [httpClient] in
                try await httpClient.execute(prepared, timeout: .hours(24))
            }
        } catch let error as BedrockError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw BedrockError(code: "ConnectionError", message: "Bedrock could not be reached (\(error))")
        }
        guard response.status == .ok else { throw await Self.error(from: response) }
        return response
    }

    /// The error an AWS JSON error answer describes: `x-amzn-ErrorType` (or `__type`) and `message`.
    static func error(from response: HTTPClientResponse) async -> BedrockError {
        let requestID = response.headers.first(name: "x-amzn-RequestId")
        let body = (try? await response.body.collect(upTo: 1024 * 1024)).map { Data(buffer: $0) } ?? Data()
        let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
        var code = response.headers.first(name: "x-amzn-ErrorType") ?? (object["__type"] as? String) ?? ""
        if let colon = code.firstIndex(of: ":") { code = String(code[..<colon]) }
        if let hash = code.lastIndex(of: "#") { code = String(code[code.index(after: hash)...]) }
        if code.isEmpty { code = BedrockError.defaultCode(forStatus: Int(response.status.code)) }
        let message = (object["message"] as? String) ?? (object["Message"] as? String) ?? response.status.reasonPhrase
        return BedrockError(code: code, message: message, statusCode: Int(response.status.code), requestID: requestID)
    }

    /// RFC 3986 percent-encoding of a path segment (everything but unreserved characters).
    static func percentEncode(_ segment: String) -> String {
        var encoded = ""
        for byte in segment.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.append(Character(Unicode.Scalar(byte)))
            default:
                encoded += String(format: "%%%02X", byte)
            }
        }
        return encoded
    }
}

extension TimeAmount {
    init(duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

import AsyncHTTPClient
import Bedrock
import ChatCore
import SigV4

/// The floor: the Bedrock emulator streamed straight to the load generator, SigV4-signed
/// InvokeModelWithResponseStream through the same `BedrockClient` the worker uses. Its "headers" time is when
/// the client hands back the stream, which it does once the response head and the first event have arrived.
struct FloorTarget: StreamTarget {
    let settings: BenchSettings
    let client: BedrockClient
    let model: ModelInfo

    var kind: BenchTarget { .floor }

    /// A Bedrock client with `connections` connections at most and no retries (a failure is counted, not hidden).
    init(settings: BenchSettings, connections: Int, httpClient: HTTPClient) throws {
        self.settings = settings
        let configuration = BedrockConfiguration(
            region: "us-east-1", endpoint: settings.bedrockEndpoint, firstByteTimeout: settings.requestTimeout,
            chunkTimeout: settings.requestTimeout, maxAttempts: 1, maxConnections: connections
        )
        let credentials = AWSCredentials(accessKeyID: settings.accessKeyID, secretAccessKey: settings.secretAccessKey)
        client = BedrockClient(configuration: configuration, credentials: EmulatorCredentials(value: credentials), httpClient: httpClient)
        guard let model = ModelCatalog.builtIn.model(id: settings.modelID) else {
            throw BenchHTTP.CallError(url: "-", status: 0, body: "unknown model \(settings.modelID)")
        }
        self.model = model
    }

    /// The HTTP client `init` expects: sized like the worker's, for `connections` streams at once.
    static func makeHTTPClient(settings: BenchSettings, connections: Int) -> HTTPClient {
        BedrockClient.makeHTTPClient(configuration: BedrockConfiguration(endpoint: settings.bedrockEndpoint, maxConnections: connections))
    }

    func prepareUsers(count: Int, messages: Int, step: String) async throws -> [VirtualUser] {
        anonymousUsers(count)
    }

    func stream(user: VirtualUser, message: Int, step: String) async -> StreamSample {
        let prompt = settings.prompt(user: user.index, message: message, step: step)
        let request = GenerationRequest(turns: [ConversationTurn(role: .user, text: prompt)], maxTokens: settings.maxTokens)
        var sample = StreamSample()
        let clock = ContinuousClock()
        let start = clock.now
        await measure(request, into: &sample, clock: clock, start: start)
        sample.total = clock.now - start
        return sample
    }

    /// Sends the request and reads the stream into `sample`, times counted from `start`.
    private func measure(_ request: GenerationRequest, into sample: inout StreamSample, clock: ContinuousClock, start: ContinuousClock.Instant) async {
        do {
            let stream = try await client.streamGeneration(model: model, request: request)
            sample.headers = clock.now - start
            for try await delta in stream where !delta.text.isEmpty {
                sample.chunk(at: clock.now - start)
            }
            if sample.chunks == 0 { sample.error = "no-chunks" }
        } catch let error as BedrockError {
            sample.error = "bedrock:" + error.code
        } catch {
            sample.error = errorKind(error)
        }
    }
}

/// The emulator's fixed key pair, handed to `BedrockClient` as they are.
struct EmulatorCredentials: CredentialProvider {
    let value: AWSCredentials
    func credentials() async throws -> AWSCredentials { value }
}

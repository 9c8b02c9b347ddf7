import AsyncHTTPClient
import ChatCore
import Foundation
import Testing

@testable import Bedrock
@testable import SigV4

/// The emulator that `make test` started, and a client of it.
enum EmulatorFixture {
    static var endpoint: String { ProcessInfo.processInfo.environment["BEDROCK_ENDPOINT"] ?? "http://127.0.0.1:3020" }
    static var credentials: AWSCredentials {
        let environment = ProcessInfo.processInfo.environment
        return AWSCredentials(
            accessKeyID: environment["EMULATOR_ACCESS_KEY_ID"] ?? "AKIDEMULATOREXAMPLE",
            secretAccessKey: environment["EMULATOR_SECRET_ACCESS_KEY"] ?? "emulator/secret/key/EXAMPLEKEY0000000000000"
        )
    }

    struct Fixed: CredentialProvider {
        let value: AWSCredentials
        func credentials() async throws -> AWSCredentials { value }
    }

    /// Runs `body` with a client of the emulator; fast timeouts and backoff so that fault tests stay short.
    static func withClient(
        credentials: AWSCredentials = credentials, region: String = "us-east-1", maxAttempts: Int = 4,
        firstByteTimeout: Duration = .seconds(10), chunkTimeout: Duration = .seconds(10),
        _ body: (BedrockClient) async throws -> Void
    ) async throws {
        let configuration = BedrockConfiguration(
            region: region, endpoint: endpoint, connectTimeout: .seconds(2), firstByteTimeout: firstByteTimeout, chunkTimeout: chunkTimeout,
            maxAttempts: maxAttempts, baseBackoff: .milliseconds(10), maxBackoff: .milliseconds(50)
        )
        let http = BedrockClient.makeHTTPClient(configuration: configuration)
        let client = BedrockClient(configuration: configuration, credentials: Fixed(value: credentials), httpClient: http)
        do {
            try await body(client)
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    /// A one-turn request; a unique prefix keeps the emulator's per-body fault counters apart between runs.
    static func request(_ text: String, maxTokens: Int = 200) -> GenerationRequest {
        GenerationRequest(system: "Be brief.", turns: [ConversationTurn(role: .user, text: "\(UUID().uuidString) \(text)")], maxTokens: maxTokens)
    }
}

@Suite("Bedrock client against the emulator")
struct BedrockClientTests {
    static let familyModels = [
        "anthropic.claude-3-haiku-20240307-v1:0", "amazon.nova-lite-v1:0", "amazon.titan-text-express-v1",
        "meta.llama3-8b-instruct-v1:0", "mistral.mistral-7b-instruct-v0:2",
    ]

    @Test("each family: the streamed text equals the whole reply, and the counts agree with it", arguments: familyModels)
    func familyRoundTrip(modelID: String) async throws {
        let model = try #require(ModelCatalog.builtIn.model(id: modelID))
        try await EmulatorFixture.withClient { client in
            let request = EmulatorFixture.request("Tell me about quantum computing [[tokens:12]]")
            let whole = try await client.generate(model: model, request: request)
            #expect(whole.text.split(separator: " ").count == 12)
            #expect(whole.outputTokens == 12)
            #expect(whole.inputTokens > 0)
            #expect(whole.stopReason == .endTurn)
            #expect(whole.usageSource != .unknown)
            #expect(whole.attempts == 1)
            #expect(whole.requestID != nil)

            var accumulator = GenerationAccumulator()
            var chunks = 0
            for try await delta in try await client.streamGeneration(model: model, request: request) {
                accumulator.add(delta)
                if !delta.text.isEmpty { chunks += 1 }
            }
            #expect(accumulator.text == whole.text)
            #expect(chunks == 12)
            #expect(accumulator.stopReason == .endTurn)
            let billed = accumulator.billedUsage
            #expect(billed.input == whole.inputTokens)
            #expect(billed.output == 12)
        }
    }

    @Test("Converse and InvokeModel give the same reply and counts for the same conversation; the catalog picks Converse where every model takes a system prompt", arguments: ["anthropic.claude-3-haiku-20240307-v1:0", "amazon.nova-lite-v1:0"])
    func converseAgreesWithInvokeModel(modelID: String) async throws {
        let model = try #require(ModelCatalog.builtIn.model(id: modelID))
        #expect(model.api == .converse)
        #expect(ModelCatalog.builtIn.model(id: "amazon.titan-text-express-v1")?.api == .invokeModel)
        try await EmulatorFixture.withClient { client in
            var request = EmulatorFixture.request("Compare the two ways [[tokens:9]]")
            request.temperature = 0.2
            request.topP = 0.9
            request.stopSequences = ["END"]
            request.turns.insert(contentsOf: [
                ConversationTurn(role: .user, text: "An earlier question"), ConversationTurn(role: .assistant, text: "An earlier answer"),
            ], at: 0)
            let converse = try await client.generate(model: model, request: request, api: .converse)
            let invoke = try await client.generate(model: model, request: request, api: .invokeModel)
            #expect(converse.text == invoke.text)
            #expect(converse.inputTokens == invoke.inputTokens)
            #expect(converse.outputTokens == 9 && converse.usageSource == .model)
            var accumulator = GenerationAccumulator()
            var chunks = 0
            for try await delta in try await client.streamGeneration(model: model, request: request, api: .converse) {
                accumulator.add(delta)
                if !delta.text.isEmpty { chunks += 1 }
            }
            #expect(accumulator.text == converse.text)
            #expect(chunks == 9)
            #expect(accumulator.stopReason == .endTurn)
            #expect(accumulator.billedUsage.input == converse.inputTokens && accumulator.billedUsage.output == 9)
            #expect(accumulator.billedUsage.source == .model)
        }
    }

    @Test("a reply cut by max tokens says so")
    func maxTokens() async throws {
        let model = try #require(ModelCatalog.builtIn.model(id: Self.familyModels[0]))
        try await EmulatorFixture.withClient { client in
            let result = try await client.generate(model: model, request: EmulatorFixture.request("Go on [[tokens:50]]", maxTokens: 5))
            #expect(result.outputTokens == 5)
            #expect(result.stopReason == .maxTokens)
        }
    }

    @Test("throttling before the answer is retried with backoff until it succeeds; the retries are counted")
    func throttlingRetried() async throws {
        let model = try #require(ModelCatalog.builtIn.model(id: Self.familyModels[0]))
        try await EmulatorFixture.withClient { client in
            let whole = try await client.generate(model: model, request: EmulatorFixture.request("Hi [[throttle:2]]"))
            #expect(whole.attempts == 3)
            #expect(client.retryCount == 2)
            let stream = try await client.invokeModelWithResponseStream(
                modelID: model.id, body: try ModelAdapters.adapter(for: model.family).requestBody(for: EmulatorFixture.request("Hi [[not-ready:1]]"))
            )
            #expect(stream.attempts == 2)
            for try await _ in stream {}
            let server = try await client.generate(model: model, request: EmulatorFixture.request("Hi [[error500:1]]"))
            #expect(server.attempts == 2)
            #expect(client.retryCount == 4)
        }
    }

    @Test("retries stop after the last attempt, with the error typed by its exception name and carrying the request id")
    func retriesExhausted() async throws {
        let model = try #require(ModelCatalog.builtIn.model(id: Self.familyModels[1]))
        try await EmulatorFixture.withClient(maxAttempts: 3) { client in
            await #expect {
                _ = try await client.generate(model: model, request: EmulatorFixture.request("Hi [[throttle]]"))
            } throws: { error in
                let error = error as? BedrockError
                return error?.code == "ThrottlingException" && error?.statusCode == 429 && error?.requestID != nil
            }
            #expect(client.retryCount == 2)
        }
    }

    @Test("an exception before the first chunk of text is retried (after Converse's messageStart too); after text it is not, and the chunks already sent stand")
    func exceptionsInStream() async throws {
        let model = try #require(ModelCatalog.builtIn.model(id: Self.familyModels[0]))
        #expect(model.api == .converse)
        try await EmulatorFixture.withClient(maxAttempts: 3) { client in
            await #expect {
                _ = try await client.streamGeneration(model: model, request: EmulatorFixture.request("Hi [[exception:0:internalServerException]]"))
            } throws: { ($0 as? BedrockError)?.code == "InternalServerException" }
            #expect(client.retryCount == 2)

            for type in ["modelStreamErrorException", "throttlingException"] {
                var received = 0
                await #expect {
                    for try await delta in try await client.streamGeneration(model: model, request: EmulatorFixture.request("Hi [[exception:3:\(type)]]")) {
                        if !delta.text.isEmpty { received += 1 }
                    }
                } throws: { ($0 as? BedrockError)?.code == BedrockError.exceptionName(type) }
                #expect(received == 3)
            }
            #expect(client.retryCount == 2)
        }
    }

    @Test("a stall between chunks ends the stream with ChunkTimeout; a slow first byte with FirstByteTimeout; neither is retried")
    func timeouts() async throws {
        let model = try #require(ModelCatalog.builtIn.model(id: Self.familyModels[3]))
        try await EmulatorFixture.withClient(firstByteTimeout: .seconds(1), chunkTimeout: .milliseconds(700)) { client in
            var received = 0
            await #expect {
                for try await delta in try await client.streamGeneration(model: model, request: EmulatorFixture.request("Hi [[stall:5]]")) {
                    if !delta.text.isEmpty { received += 1 }
                }
            } throws: { ($0 as? BedrockError)?.code == "ChunkTimeout" }
            // The stall (5 s) would have ended the stream normally: ChunkTimeout shows the client gave up first.
            #expect(received == 1)
            await #expect {
                _ = try await client.streamGeneration(model: model, request: EmulatorFixture.request("Hi [[slow-first-byte:4]]"))
            } throws: { ($0 as? BedrockError)?.code == "FirstByteTimeout" }
            #expect(client.retryCount == 0)
        }
    }

    @Test("wrong credentials, region, model or body: typed errors, never retried")
    func clientErrors() async throws {
        let model = try #require(ModelCatalog.builtIn.model(id: Self.familyModels[0]))
        let body = try ModelAdapters.adapter(for: model.family).requestBody(for: EmulatorFixture.request("Hi"))
        var wrongSecret = EmulatorFixture.credentials
        wrongSecret.secretAccessKey += "x"
        try await EmulatorFixture.withClient(credentials: wrongSecret) { client in
            await #expect { _ = try await client.invokeModel(modelID: model.id, body: body) } throws: {
                ($0 as? BedrockError)?.code == "InvalidSignatureException" && ($0 as? BedrockError)?.statusCode == 403
            }
            #expect(client.retryCount == 0)
        }
        var unknownKey = EmulatorFixture.credentials
        unknownKey.accessKeyID = "AKIDUNKNOWN"
        try await EmulatorFixture.withClient(credentials: unknownKey) { client in
            await #expect { _ = try await client.invokeModel(modelID: model.id, body: body) } throws: {
                ($0 as? BedrockError)?.code == "UnrecognizedClientException"
            }
        }
        try await EmulatorFixture.withClient(region: "eu-west-3") { client in
            await #expect { _ = try await client.invokeModel(modelID: model.id, body: body) } throws: {
                ($0 as? BedrockError)?.code == "InvalidSignatureException"
            }
        }
        try await EmulatorFixture.withClient { client in
            await #expect { _ = try await client.invokeModel(modelID: "anthropic.claude-unknown-v9:0", body: body) } throws: {
                ($0 as? BedrockError)?.code == "ResourceNotFoundException" && ($0 as? BedrockError)?.statusCode == 404
            }
            await #expect { _ = try await client.invokeModel(modelID: model.id, body: Data("{}".utf8)) } throws: {
                ($0 as? BedrockError)?.code == "ValidationException" && ($0 as? BedrockError)?.statusCode == 400
            }
            #expect(client.retryCount == 0)
        }
    }
}

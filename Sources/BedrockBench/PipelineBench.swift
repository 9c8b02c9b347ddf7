import AsyncHTTPClient
import Bedrock
import ChatCore
import Foundation
import NIOCore
import NIOFoundationCompat
import SigV4

/// The full path against its floor, in the same run with the same settings: replies of 12 chunks 20 ms apart
/// (`[[tokens:12]] [[tps:50]]`), streamed (1) straight from the emulator through `BedrockClient` (the floor)
/// and (2) through chat-api → Redis → chat-worker → emulator → Redis → chat-api as SSE. Reports what the
/// full path adds to the time to first chunk (p50 / p99) and to the whole reply (p50), per concurrency.
/// Needs `CHAT_URL`, `ACCOUNTING_URL`, `BEDROCK_ENDPOINT` and `JWT_ACCESS_SECRET`.
func runPipelineBenchmark() async throws -> [String] {
    let environment = ProcessInfo.processInfo.environment
    guard let chatURL = environment["CHAT_URL"], let accountingURL = environment["ACCOUNTING_URL"],
        let secret = environment["JWT_ACCESS_SECRET"], let endpoint = environment["BEDROCK_ENDPOINT"]
    else { return [] }
    let signer = try AccessTokenVerifier(secret: secret)
    var settings = HTTPClient.Configuration(timeout: .init(connect: .seconds(5)))
    settings.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
    let configuration = BedrockConfiguration(region: "us-east-1", endpoint: endpoint)
    let bedrockHTTP = BedrockClient.makeHTTPClient(configuration: configuration)
    let credentials = AWSCredentials(
        accessKeyID: environment["EMULATOR_ACCESS_KEY_ID"] ?? "AKIDEMULATOREXAMPLE",
        secretAccessKey: environment["EMULATOR_SECRET_ACCESS_KEY"] ?? "emulator/secret/key/EXAMPLEKEY0000000000000"
    )
    let bedrock = BedrockClient(configuration: configuration, credentials: FixedCredentials(value: credentials), httpClient: bedrockHTTP)
    let model = ModelCatalog.model(id: ModelCatalog.defaultModelID)!
    let clock = ContinuousClock()

    @Sendable func floorStream(_ index: Int) async throws -> (first: Duration, total: Duration) {
        let request = GenerationRequest(turns: [ConversationTurn(role: .user, text: "bench \(index) [[tokens:12]] [[tps:50]]")], maxTokens: 1_024)
        let start = clock.now
        var first: Duration?
        for try await delta in try await bedrock.streamGeneration(model: model, request: request) where !delta.text.isEmpty {
            if first == nil { first = clock.now - start }
        }
        return (first ?? .zero, clock.now - start)
    }

    func session(_ user: String, token: String) async throws -> String {
        var allocate = HTTPClientRequest(url: accountingURL + "/api/credits/allocate")
        allocate.method = .POST
        allocate.headers.add(name: "Authorization", value: "Bearer " + signer.sign(userID: "admin", role: .admin, lifetime: 600))
        allocate.headers.add(name: "Content-Type", value: "application/json")
        allocate.body = .bytes(ByteBuffer(string: #"{"targetUserId":"\#(user)","credits":100000}"#))
        _ = try await http.execute(allocate, timeout: .seconds(30)).body.collect(upTo: 1 << 20)
        var create = HTTPClientRequest(url: chatURL + "/api/chat/sessions")
        create.method = .POST
        create.headers.add(name: "Authorization", value: "Bearer \(token)")
        create.headers.add(name: "Content-Type", value: "application/json")
        create.body = .bytes(ByteBuffer(string: #"{"title":"bench"}"#))
        let body = try await http.execute(create, timeout: .seconds(30)).body.collect(upTo: 1 << 20)
        let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
        return object?["sessionId"] as? String ?? ""
    }

    @Sendable func fullStream(_ index: Int, sessionID: String, token: String) async throws -> (first: Duration, total: Duration) {
        var request = HTTPClientRequest(url: chatURL + "/api/chat/sessions/\(sessionID)/stream")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"message":"bench \#(index) [[tokens:12]] [[tps:50]]"}"#))
        let start = clock.now
        let response = try await http.execute(request, timeout: .seconds(120))
        var first: Duration?
        var text = ""
        for try await buffer in response.body {
            text += String(buffer: buffer)
            if first == nil, text.contains("event: chunk") { first = clock.now - start }
            if text.contains("event: complete") || text.contains("event: error") { break }
        }
        return (first ?? .zero, clock.now - start)
    }

    func measure(_ concurrency: Int, rounds: Int, _ one: @escaping @Sendable (Int) async throws -> (first: Duration, total: Duration)) async throws -> [(first: Duration, total: Duration)] {
        try await withThrowingTaskGroup(of: (first: Duration, total: Duration).self) { group in
            for index in 0..<concurrency {
                group.addTask {
                    var last = (first: Duration.zero, total: Duration.zero)
                    for round in 0..<rounds { last = try await one(index * 1_000 + round) }
                    return last
                }
            }
            var all: [(first: Duration, total: Duration)] = []
            for try await sample in group { all.append(sample) }
            return all
        }
    }

    var rows: [String] = []
    for concurrency in [1, 20, 100] {
        let rounds = concurrency == 1 ? 20 : 3
        // Sessions and tokens first, so that the measured requests only stream.
        var sessions: [(String, String)] = []
        for index in 0..<concurrency {
            let user = "bench-\(concurrency)-\(index)-\(UUID().uuidString.prefix(6))"
            let token = signer.sign(userID: user, role: .enduser, lifetime: 3_600)
            sessions.append((try await session(user, token: token), token))
        }
        let prepared = sessions
        _ = try await measure(min(concurrency, 4), rounds: 1, floorStream)  // warm-up
        let floor = try await measure(concurrency, rounds: rounds, floorStream)
        let full = try await measure(concurrency, rounds: rounds) { index in
            let (sessionID, token) = prepared[index / 1_000]
            return try await fullStream(index, sessionID: sessionID, token: token)
        }
        func percentile(_ values: [Duration], _ p: Double) -> Duration {
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        func ms(_ duration: Duration) -> String {
            String(format: "%.1f ms", Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15)
        }
        let addedFirst50 = percentile(full.map { $0.first }, 0.5) - percentile(floor.map { $0.first }, 0.5)
        let addedFirst99 = percentile(full.map { $0.first }, 0.99) - percentile(floor.map { $0.first }, 0.99)
        let addedTotal = percentile(full.map { $0.total }, 0.5) - percentile(floor.map { $0.total }, 0.5)
        rows.append(
            "| \(concurrency) | \(ms(percentile(floor.map { $0.first }, 0.5))) | \(ms(percentile(full.map { $0.first }, 0.5))) | +\(ms(addedFirst50)) / +\(ms(addedFirst99)) | +\(ms(addedTotal)) |"
        )
    }
    try await http.shutdown()
    try await bedrockHTTP.shutdown()
    return rows
}

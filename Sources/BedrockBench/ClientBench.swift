import Bedrock
import ChatCore
import Foundation
import SigV4

/// Streams many long replies from the emulator (which then sends as fast as it can) and measures what the
/// client costs per chunk: this process's CPU time (user + system) divided by the chunks received, and the
/// chunk rate. Needs the emulator at `BEDROCK_ENDPOINT` with `EMULATOR_TOKENS_PER_SECOND=0`.
func runClientBenchmark() async throws -> [String] {
    let environment = ProcessInfo.processInfo.environment
    let configuration = BedrockConfiguration(region: "us-east-1", endpoint: environment["BEDROCK_ENDPOINT"] ?? "http://127.0.0.1:3030")
    let credentials = AWSCredentials(
        accessKeyID: environment["EMULATOR_ACCESS_KEY_ID"] ?? "AKIDEMULATOREXAMPLE",
        secretAccessKey: environment["EMULATOR_SECRET_ACCESS_KEY"] ?? "emulator/secret/key/EXAMPLEKEY0000000000000"
    )
    let http = BedrockClient.makeHTTPClient(configuration: configuration)
    let client = BedrockClient(configuration: configuration, credentials: FixedCredentials(value: credentials), httpClient: http)
    let model = ModelCatalog.builtIn.model(id: "anthropic.claude-3-haiku-20240307-v1:0")!

    func streamOnce(_ index: Int, tokens: Int) async throws -> Int {
        let request = GenerationRequest(turns: [ConversationTurn(role: .user, text: "bench \(index) [[tokens:\(tokens)]]")], maxTokens: 4_000)
        var chunks = 0
        for try await delta in try await client.streamGeneration(model: model, request: request) where !delta.text.isEmpty {
            chunks += 1
        }
        return chunks
    }

    _ = try await streamOnce(-1, tokens: 50)  // warm up the connection pool
    var rows: [String] = []
    for (streams, concurrency) in [(40, 1), (200, 20)] {
        let cpuBefore = processCPUTime()
        let clock = ContinuousClock()
        let start = clock.now
        let chunks = try await withThrowingTaskGroup(of: Int.self) { group in
            var started = 0
            var total = 0
            while started < concurrency {
                let index = started
                group.addTask { try await streamOnce(index, tokens: 1_000) }
                started += 1
            }
            while let done = try await group.next() {
                total += done
                if started < streams {
                    let index = started
                    group.addTask { try await streamOnce(index, tokens: 1_000) }
                    started += 1
                }
            }
            return total
        }
        let wall = clock.now - start
        let cpu = processCPUTime() - cpuBefore
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        rows.append(
            "| client, \(streams) streams × 1,000 chunks, \(concurrency) at a time | \(Int(Double(chunks) / seconds).formatted()) chunks/s | "
                + String(format: "%.1f µs CPU per chunk", cpu / Double(chunks) * 1e6) + " |"
        )
    }
    try await http.shutdown()
    return rows
}

/// This process's user + system CPU time in seconds.
func processCPUTime() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

/// Credentials that never change.
struct FixedCredentials: CredentialProvider {
    let value: AWSCredentials
    func credentials() async throws -> AWSCredentials { value }
}

import ArgumentParser
import Foundation

/// `chat-bench idle`: what one idle open SSE connection costs chat-api in resident memory (and Redis
/// connections): a supervisor's observers on sessions with no reply running, all open at once, against none.
struct IdleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "idle", abstract: "chat-api's memory per idle open SSE connection.")

    @Option(help: "Idle streams to hold open at once (default 1000).")
    var connections: Int = 1_000
    @Option(help: "Sessions the observers are spread over (default 10).")
    var sessions: Int = 10
    @Option(name: .customLong("pid"), help: "chat-api's process, as chat-api=PID (env BENCH_PIDS is read too).")
    var pids: [String] = []
    @Option(help: "Redis port whose connections from chat-api are counted (env BENCH_REDIS_PORT).")
    var redisPort: Int?
    @Option(help: "Seconds to let chat-api settle before each reading (default 3).")
    var settle: Int = 3
    @Option(help: "Seconds to keep the streams open after the reading, while another load runs (default 0).")
    var hold: Int = 0
    @Option(help: "The JSON file to write (default chat-bench-idle.json).")
    var json: String = "chat-bench-idle.json"
    @Option(help: "chat-api (env CHAT_URL; default http://127.0.0.1:3002).")
    var chatURL: String?
    @Option(help: "The accounting stand-in, which must credit the sessions' owner (env ACCOUNTING_URL; default http://127.0.0.1:3001).")
    var accountingURL: String?
    @Option(help: "The auth stand-in; when set, tokens come from its login (env AUTH_URL).")
    var authURL: String?

    func run() async throws {
        let env = BenchSettings.environment
        let all = try RunCommand.processes(pids + (env("BENCH_PIDS")?.split(separator: ",").map(String.init) ?? []))
        guard let api = all.first(where: { $0.name == "chat-api" }) else { throw ValidationError("give chat-api's process: --pid chat-api=PID") }
        let settings = BenchSettings(
            chatURL: chatURL ?? env("CHAT_URL") ?? "http://127.0.0.1:3002", accountingURL: accountingURL ?? env("ACCOUNTING_URL") ?? "http://127.0.0.1:3001", authURL: authURL ?? env("AUTH_URL"),
            jwtSecret: env("JWT_ACCESS_SECRET"), bedrockEndpoint: "", accessKeyID: "", secretAccessKey: "", liteLLMURL: "", liteLLMModel: "",
            liteLLMKey: nil, modelID: "anthropic.claude-3-sonnet-20240229-v1:0", replyTokens: 0, paceMilliseconds: 0, maxTokens: 1,
            requestTimeout: .seconds(3_600)
        )
        let http = BenchHTTP(connections: connections + 16)
        let probe = IdleConnectionProbe(settings: settings, http: http, api: api, redisPort: redisPort ?? env("BENCH_REDIS_PORT").flatMap(Int.init))
        let result: IdleConnectionProbe.Result
        do {
            result = try await probe.run(connections: connections, sessions: sessions, settle: .seconds(settle), hold: .seconds(hold))
        } catch {
            try? await http.shutdown()
            throw error
        }
        try? await http.shutdown()
        print(result.markdown)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(result).write(to: URL(fileURLWithPath: json))
        log("wrote \(json)")
        if result.opened < connections { throw ExitCode(1) }
    }
}

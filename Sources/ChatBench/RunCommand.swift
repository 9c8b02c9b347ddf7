import ArgumentParser
import AsyncHTTPClient
import Foundation

/// `chat-bench run` (the default): every target at every concurrency, then the Markdown report on standard
/// output (and `--markdown`), and the JSON file.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Stream replies through the targets and report.")

    @Option(name: .customLong("target"), help: "full, floor, litellm; repeatable or comma-separated (env BENCH_TARGETS; default full).")
    var targets: [String] = []
    @Option(help: "Concurrent virtual users per step, comma-separated (env BENCH_CONCURRENCY; default 1).")
    var concurrency: String?
    @Option(help: "The most virtual users a target runs with, as target=N; repeatable (e.g. litellm=100).")
    var cap: [String] = []
    @Option(help: "Messages each virtual user streams in a row (env BENCH_MESSAGES; default 3).")
    var messages: Int?
    @Option(help: "Reply length in tokens (env BENCH_TOKENS; default 12).")
    var tokens: Int?
    @Option(help: "Milliseconds between chunks, 0 for no pacing (env BENCH_PACE_MS; default 20).")
    var paceMs: Int?
    @Option(help: "At least this many measured requests per step: users stream more messages at low concurrency (default 0).")
    var minRequests: Int = 0
    @Option(help: "Warm-up streams per target and step, not measured (env BENCH_WARMUP; default 4).")
    var warmup: Int?
    @Option(name: .customLong("pid"), help: "A process of the stack to measure, as name=PID; repeatable (env BENCH_PIDS, comma-separated).")
    var pids: [String] = []
    @Option(name: .customLong("own"), help: "The processes a target's CPU counts, as target=name,name (defaults: full=chat-api,chat-worker,redis; litellm=litellm; floor=emulator).")
    var own: [String] = []
    @Option(help: "Redis port whose connections from the process named chat-api are counted (env BENCH_REDIS_PORT).")
    var redisPort: Int?
    @Option(help: "The JSON file to write (default chat-bench.json).")
    var json: String = "chat-bench.json"
    @Option(help: "Also write the Markdown report to this file.")
    var markdown: String?
    @Option(help: "Seconds one request may take in all (default 300).")
    var timeout: Int = 300
    @Option(help: "The Bedrock model every target asks for.")
    var model: String = "anthropic.claude-3-sonnet-20240229-v1:0"
    @Option(help: "chat-api (env CHAT_URL; default http://127.0.0.1:3002).")
    var chatURL: String?
    @Option(help: "The accounting stand-in (env ACCOUNTING_URL; default http://127.0.0.1:3001).")
    var accountingURL: String?
    @Option(help: "The auth stand-in; when set, tokens come from its login (env AUTH_URL).")
    var authURL: String?
    @Option(help: "The Bedrock endpoint of the floor (env BEDROCK_ENDPOINT; default http://127.0.0.1:3010).")
    var bedrockEndpoint: String?
    @Option(name: .customLong("litellm-url"), help: "The LiteLLM proxy (env LITELLM_URL; default http://127.0.0.1:4000); its key is LITELLM_MASTER_KEY.")
    var liteLLMURL: String?
    @Option(name: .customLong("litellm-model"), help: "The model name LiteLLM's config gives (env LITELLM_MODEL; default bench-claude).")
    var liteLLMModel: String?
    @Flag(help: "Exit with status 1 when any request failed.")
    var failOnError = false

    func run() async throws {
        let env = BenchSettings.environment
        let settings = BenchSettings(
            chatURL: chatURL ?? env("CHAT_URL") ?? "http://127.0.0.1:3002",
            accountingURL: accountingURL ?? env("ACCOUNTING_URL") ?? "http://127.0.0.1:3001",
            authURL: authURL ?? env("AUTH_URL"), jwtSecret: env("JWT_ACCESS_SECRET"),
            bedrockEndpoint: bedrockEndpoint ?? env("BEDROCK_ENDPOINT") ?? "http://127.0.0.1:3010",
            accessKeyID: env("EMULATOR_ACCESS_KEY_ID") ?? "AKIDEMULATOREXAMPLE",
            secretAccessKey: env("EMULATOR_SECRET_ACCESS_KEY") ?? "emulator/secret/key/EXAMPLEKEY0000000000000",
            liteLLMURL: liteLLMURL ?? env("LITELLM_URL") ?? "http://127.0.0.1:4000",
            liteLLMModel: liteLLMModel ?? env("LITELLM_MODEL") ?? "bench-claude", liteLLMKey: env("LITELLM_MASTER_KEY"),
            modelID: model, replyTokens: tokens ?? env("BENCH_TOKENS").flatMap(Int.init) ?? 12,
            paceMilliseconds: paceMs ?? env("BENCH_PACE_MS").flatMap(Int.init) ?? 20, maxTokens: 1_024, requestTimeout: .seconds(timeout)
        )
        let chosen = try BenchTarget.list(targets.isEmpty ? env("BENCH_TARGETS") ?? "full" : targets.joined(separator: ","))
        let levels = try Self.integers(concurrency ?? env("BENCH_CONCURRENCY") ?? "1", option: "--concurrency")
        let messagesPerUser = messages ?? env("BENCH_MESSAGES").flatMap(Int.init) ?? 3
        let warmupStreams = warmup ?? env("BENCH_WARMUP").flatMap(Int.init) ?? 4
        var caps: [BenchTarget: Int] = [:]
        for entry in cap {
            let parts = entry.split(separator: "=")
            guard parts.count == 2, let target = BenchTarget(rawValue: String(parts[0])), let limit = Int(parts[1]) else {
                throw ValidationError("--cap expects target=N, not \(entry)")
            }
            caps[target] = limit
        }
        let processes = try Self.processes(pids + (env("BENCH_PIDS")?.split(separator: ",").map(String.init) ?? []))
        var ownership: [BenchTarget: [String]] = [.full: ["chat-api", "chat-worker", "redis"], .litellm: ["litellm"], .floor: ["emulator"]]
        for entry in own {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let target = BenchTarget(rawValue: String(parts[0])) else { throw ValidationError("--own expects target=name,name") }
            ownership[target] = parts[1].split(separator: ",").map(String.init)
        }

        let connections = (levels.max() ?? 1) + 16
        let http = BenchHTTP(connections: connections)
        let bedrockHTTP = FloorTarget.makeHTTPClient(settings: settings, connections: connections)
        var results: [StepResult] = []
        var failure: (any Error)?
        do {
            var streamTargets: [BenchTarget: any StreamTarget] = [:]
            for target in chosen {
                switch target {
                case .full:
                    let tokens = try await TokenSource(settings: settings, http: http)
                    streamTargets[.full] = FullPathTarget(settings: settings, http: http, users: FullPathUsers(settings: settings, http: http, tokens: tokens))
                case .floor: streamTargets[.floor] = try FloorTarget(settings: settings, connections: connections, httpClient: bedrockHTTP)
                case .litellm: streamTargets[.litellm] = LiteLLMTarget(settings: settings, http: http)
                }
            }
            let runID = String(UInt32.random(in: 0...UInt32.max), radix: 36)
            for level in levels {
                for kind in BenchTarget.runOrder {
                    guard let target = streamTargets[kind], level <= caps[kind] ?? .max else { continue }
                    let perUser = max(messagesPerUser, (minRequests + level - 1) / level)
                    let step = LoadStep(
                        target: target, concurrency: level, messages: perUser, warmup: warmupStreams,
                        processes: processes, ownProcesses: ownership[kind] ?? [], redisPort: redisPort ?? env("BENCH_REDIS_PORT").flatMap(Int.init)
                    )
                    results.append(try await step.run(step: "\(runID)-\(kind.rawValue)-\(level)"))
                }
            }
        } catch {
            failure = error
        }
        try? await http.shutdown()
        try? await bedrockHTTP.shutdown()
        if let failure { throw failure }

        let report = MarkdownReport(steps: results).render()
        print(report)
        if let markdown { try report.write(toFile: markdown, atomically: true, encoding: .utf8) }
        let file = BenchReportFile(settings: settings, messagesPerUser: messagesPerUser, warmup: warmupStreams, steps: results)
        try file.write(to: json)
        log("wrote \(json)")
        if failOnError, results.contains(where: { $0.completed < $0.requests || $0.requests == 0 }) {
            log("some requests failed")
            throw ExitCode(1)
        }
    }

    /// A comma-separated list of positive integers.
    static func integers(_ text: String, option: String) throws -> [Int] {
        let values = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 > 0 }) else { throw ValidationError("\(option) expects positive integers, not \(text)") }
        return values
    }

    /// `name=PID` arguments, each checked to name a running process.
    static func processes(_ arguments: [String]) throws -> [MonitoredProcess] {
        try arguments.map { argument in
            guard let process = MonitoredProcess(argument: argument) else { throw ValidationError("--pid expects name=PID, not \(argument)") }
            guard ProcFS.cpuSeconds(process.pid) != nil else { throw ValidationError("process \(argument) is not running") }
            return process
        }
    }
}

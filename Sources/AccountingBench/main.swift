// accounting-bench: load on a running accounting stand-in, the way chat generations put it there. N users at
// once, each with credits of its own, each doing `initialize` then `finalize` in a loop (as chat-api and the
// worker do around every job); reports p50 / p99 of each call and calls per second, at each concurrency.
//
// Settings (environment): ACCOUNTING_URL (default http://127.0.0.1:3001), JWT_ACCESS_SECRET (required),
// BENCH_CONCURRENCY (default "1,20,100"), BENCH_SECONDS measured per concurrency (default 10, after
// BENCH_WARMUP_SECONDS, default 2), BENCH_HEADER=0 to leave out the table's header. Every HTTP call it made
// (credits, warm-up and measured) is counted on stderr as `calls=N`, so that a script can divide the database's
// operation counters by it (scripts/bench-accounting.sh).
import AsyncHTTPClient
import ChatCore
import Foundation
import NIOCore
import NIOFoundationCompat

/// One run's samples: each call's latency, and how many calls failed.
struct RunSamples: Sendable {
    var initialize: [Duration] = []
    var finalize: [Duration] = []
    var failures = 0
    /// Every call made, warm-up included.
    var made = 0

    mutating func merge(_ other: RunSamples) {
        initialize += other.initialize
        finalize += other.finalize
        failures += other.failures
        made += other.made
    }
}

/// The bench's settings, read from the environment.
struct BenchSettings {
    var baseURL: String
    var secret: String
    var concurrencies: [Int]
    var seconds: Double
    var warmupSeconds: Double

    init(environment: [String: String]) throws {
        baseURL = environment["ACCOUNTING_URL"] ?? "http://127.0.0.1:3001"
        guard let secret = environment["JWT_ACCESS_SECRET"] else {
            throw ChatError(.internal, code: "CONFIGURATION", message: "JWT_ACCESS_SECRET is required")
        }
        self.secret = secret
        concurrencies = (environment["BENCH_CONCURRENCY"] ?? "1,20,100").split(separator: ",").compactMap { Int($0) }
        seconds = Double(environment["BENCH_SECONDS"] ?? "10") ?? 10
        warmupSeconds = Double(environment["BENCH_WARMUP_SECONDS"] ?? "2") ?? 2
    }
}

/// Calls the stand-in's HTTP API.
struct StandinCaller: Sendable {
    let http: HTTPClient
    let baseURL: String
    /// Sent as the chat service's credential, when the stand-in requires one (`ACCOUNTING_SERVICE_TOKEN`).
    var serviceToken: String? = ProcessInfo.processInfo.environment[ServiceCredential.setting]

    /// POSTs `body` to `path` with `token`; returns the status code.
    func post(_ path: String, token: String, body: String) async throws -> Int {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer " + token)
        request.headers.add(name: "Content-Type", value: "application/json")
        if let serviceToken { request.headers.add(name: ServiceCredential.headerName, value: serviceToken) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await http.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }
}

/// The `p` quantile of `values` (nearest rank), in milliseconds.
func milliseconds(_ values: [Duration], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let duration = sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    return Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

/// Runs `users` loops of initialize → finalize until `deadline`, each user with its own token; samples taken
/// only after `measureFrom`.
func run(
    caller: StandinCaller, tokens: [String], tag: String, measureFrom: ContinuousClock.Instant, deadline: ContinuousClock.Instant
) async -> RunSamples {
    let clock = ContinuousClock()
    return await withTaskGroup(of: RunSamples.self) { group in
        for (index, token) in tokens.enumerated() {
            group.addTask {
                var samples = RunSamples()
                var round = 0
                while clock.now < deadline {
                    round += 1
                    let session = "\(tag)-\(index)-\(round)"
                    let start = clock.now
                    let reserved = try? await caller.post(
                        "/api/streaming-sessions/initialize", token: token,
                        body: #"{"sessionId":"\#(session)","modelId":"\#(ModelCatalog.builtIn.defaultModelID)","estimatedTokens":1000}"#
                    )
                    let middle = clock.now
                    let settled = try? await caller.post(
                        "/api/streaming-sessions/finalize", token: token,
                        body: #"{"sessionId":"\#(session)","actualTokens":500,"inputTokens":200,"outputTokens":300,"success":true}"#
                    )
                    let end = clock.now
                    samples.made += 2
                    guard start >= measureFrom else { continue }
                    if reserved == 201 { samples.initialize.append(middle - start) } else { samples.failures += 1 }
                    if settled == 200 { samples.finalize.append(end - middle) } else { samples.failures += 1 }
                }
                return samples
            }
        }
        var all = RunSamples()
        for await samples in group { all.merge(samples) }
        return all
    }
}

/// The whole run: credits for every user, then each concurrency in turn, one table row each.
func benchmark() async throws {
    let settings = try BenchSettings(environment: ProcessInfo.processInfo.environment)
    let signer = try AccessTokenVerifier(secret: settings.secret)
    var httpSettings = HTTPClient.Configuration(timeout: .init(connect: .seconds(5)))
    httpSettings.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpSettings)
    let caller = StandinCaller(http: http, baseURL: settings.baseURL)
    let admin = signer.sign(userID: "admin", role: .admin, lifetime: 3_600)
    let runID = UUID().uuidString.prefix(8).lowercased()

    if ProcessInfo.processInfo.environment["BENCH_HEADER"] != "0" {
        print("| concurrent users | initialize p50 / p99 | finalize p50 / p99 | calls/s (both kinds) | failed calls |")
        print("| --- | --- | --- | --- | --- |")
    }
    var made = 0
    for concurrency in settings.concurrencies {
        // Every user gets credits first, so the measured loop only reserves and settles.
        var tokens: [String] = []
        for index in 0..<concurrency {
            let user = "bench-\(runID)-\(concurrency)-\(index)"
            let status = try await caller.post(
                "/api/credits/allocate", token: admin, body: #"{"targetUserId":"\#(user)","credits":1000000000}"#
            )
            guard status == 201 else { throw ChatError(.internal, code: "BENCH", message: "allocate answered \(status)") }
            tokens.append(signer.sign(userID: user, role: .enduser, lifetime: 3_600))
            made += 1
        }
        let clock = ContinuousClock()
        let start = clock.now
        let measureFrom = start + .milliseconds(Int(settings.warmupSeconds * 1000))
        let deadline = measureFrom + .milliseconds(Int(settings.seconds * 1000))
        let samples = await run(caller: caller, tokens: tokens, tag: "\(runID)-\(concurrency)", measureFrom: measureFrom, deadline: deadline)
        let elapsed = clock.now - measureFrom
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let calls = Double(samples.initialize.count + samples.finalize.count)
        made += samples.made
        print(
            String(
                format: "| %d | %.2f / %.2f ms | %.2f / %.2f ms | %.0f | %d |", concurrency,
                milliseconds(samples.initialize, 0.5), milliseconds(samples.initialize, 0.99),
                milliseconds(samples.finalize, 0.5), milliseconds(samples.finalize, 0.99), calls / seconds, samples.failures
            )
        )
    }
    FileHandle.standardError.write(Data("calls=\(made)\n".utf8))
    try await http.shutdown()
}

try await benchmark()

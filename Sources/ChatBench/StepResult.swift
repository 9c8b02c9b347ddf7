/// One target at one concurrency: what the report and the JSON file say of it.
struct StepResult: Codable, Sendable {
    var target: BenchTarget
    /// Virtual users streaming at once.
    var concurrency: Int
    var messagesPerUser: Int
    var requests: Int
    var completed: Int
    /// Failed requests by kind.
    var errors: [String: Int]
    /// The measured phase, from the first request sent to the last one ended.
    var durationSeconds: Double
    var chunks: Int
    var repliesPerSecond: Double
    var chunksPerSecond: Double
    /// `headers`, `firstChunk`, `gap`, `lastChunk`, `complete` and `total` over the completed requests.
    var latency: [String: LatencySummary]
    /// The server's spans (`Server-Timing` and the `complete` event's `spans`) and the residual
    /// `relayAndClient`; empty when the server reported none.
    var breakdown: [String: LatencySummary]
    /// Every monitored process's CPU over the measured phase and its peak memory.
    var processes: [ProcessUsage]
    /// The processes counted as this target's own, and their CPU milliseconds per 1,000 chunks.
    var ownProcesses: [String]
    var ownCPUMillisecondsPer1kChunks: Double?
    /// The most TCP connections chat-api held to Redis while this step ran (full path, when asked for).
    var chatAPIRedisConnectionsPeak: Int?

    /// The name of the residual span: first chunk less headers and the worker's spans.
    static let residual = "relayAndClient"

    /// Aggregates the samples of a measured phase.
    init(
        target: BenchTarget, concurrency: Int, messagesPerUser: Int, samples: [StreamSample], duration: Duration,
        processes: [ProcessUsage], ownProcesses: [String], redisConnectionsPeak: Int?
    ) {
        self.target = target
        self.concurrency = concurrency
        self.messagesPerUser = messagesPerUser
        requests = samples.count
        let done = samples.filter(\.completed)
        completed = done.count
        errors = samples.compactMap(\.error).reduce(into: [:]) { $0[$1, default: 0] += 1 }
        durationSeconds = duration.milliseconds / 1_000
        chunks = samples.map(\.chunks).reduce(0, +)
        repliesPerSecond = durationSeconds > 0 ? Double(completed) / durationSeconds : 0
        chunksPerSecond = durationSeconds > 0 ? Double(chunks) / durationSeconds : 0

        var histograms: [String: LatencyHistogram] = [:]
        func record(_ name: String, _ value: Duration?) {
            if let value { histograms[name, default: LatencyHistogram()].record(value) }
        }
        var spans: [String: LatencyHistogram] = [:]
        for sample in done {
            record("headers", sample.headers)
            record("firstChunk", sample.firstChunk)
            record("lastChunk", sample.lastChunk)
            record("complete", sample.complete)
            record("total", sample.total)
            for gap in sample.gaps { record("gap", gap) }
            for (name, value) in sample.serverTiming.merging(sample.spans, uniquingKeysWith: { $1 }) {
                spans[name, default: LatencyHistogram()].record(milliseconds: value)
            }
            let worker = ServerTiming.eventSpans.compactMap { sample.spans[$0] }
            if worker.count == ServerTiming.eventSpans.count, let first = sample.firstChunk, let headers = sample.headers {
                spans[Self.residual, default: LatencyHistogram()].record(milliseconds: (first - headers).milliseconds - worker.reduce(0, +))
            }
        }
        latency = histograms.compactMapValues(\.summary)
        breakdown = spans.compactMapValues(\.summary)
        self.processes = processes
        self.ownProcesses = ownProcesses
        let own = processes.filter { ownProcesses.contains($0.name) }
        ownCPUMillisecondsPer1kChunks = own.isEmpty || chunks == 0 ? nil : own.map(\.cpuMilliseconds).reduce(0, +) * 1_000 / Double(chunks)
        chatAPIRedisConnectionsPeak = redisConnectionsPeak
    }
}

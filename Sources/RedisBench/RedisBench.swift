import Foundation
import Queue

/// Measures the Redis client against a running server and prints Markdown table rows:
/// sequential round trips, pipelined throughput, many tasks sharing one connection, and the time from an
/// XADD to the wake-up of a blocked XREADGROUP.
@main
struct RedisBench {
    static func main() async throws {
        let url = ProcessInfo.processInfo.environment["REDIS_URL"] ?? "redis://127.0.0.1:6391"
        let redis = RedisClient(configuration: try RedisConfiguration(url: url))
        let writer = RedisClient(configuration: try RedisConfiguration(url: url))
        defer {
            redis.shutdown()
            writer.shutdown()
        }
        _ = try await redis.ping()
        _ = try await writer.ping()
        let clock = ContinuousClock()

        // Sequential: each command awaited before the next.
        let sequentialCount = 20_000
        var latencies: [Duration] = []
        latencies.reserveCapacity(sequentialCount)
        var start = clock.now
        for index in 0..<sequentialCount {
            let sent = clock.now
            try await redis.set("bench:key", String(index))
            latencies.append(clock.now - sent)
        }
        report("sequential SET, awaited one by one", count: sequentialCount, elapsed: clock.now - start, latencies: latencies)

        // Pipelined: 10 batches of 10,000 commands, one write and one flush each.
        let batches = 10
        let batchSize = 10_000
        let commands = (0..<batchSize).map { RedisCommand("SET", "bench:p:\($0 % 100)", String($0)) }
        start = clock.now
        for _ in 0..<batches { _ = try await redis.pipeline(commands) }
        report("pipelined SET, batches of 10,000", count: batches * batchSize, elapsed: clock.now - start, latencies: nil)

        // Concurrent: 100 tasks, each awaiting its own commands, multiplexed on the one shared connection.
        let tasks = 100
        let perTask = 1_000
        start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<tasks {
                group.addTask {
                    for index in 0..<perTask { try await redis.set("bench:c:\(task)", String(index)) }
                }
            }
            try await group.waitForAll()
        }
        report("100 tasks sharing one connection (SET)", count: tasks * perTask, elapsed: clock.now - start, latencies: nil)

        // XADD → blocked XREADGROUP wake-up.
        let stream = "bench:stream:\(UUID().uuidString)"
        try await redis.xgroupCreate(stream, group: "g")
        var wakeups: [Duration] = []
        for _ in 0..<300 {
            let reader = Task { try await redis.xreadgroup(group: "g", consumer: "c", key: stream, count: 1, block: .seconds(5)) }
            try await Task.sleep(for: .milliseconds(2))
            let added = clock.now
            try await writer.xadd(stream, fields: [("n", "1")])
            _ = try await reader.value
            wakeups.append(clock.now - added)
        }
        try await redis.delete(stream)
        let sorted = wakeups.sorted()
        print("| XADD → blocked XREADGROUP wake-up (300 samples) | – | p50 \(ms(sorted[sorted.count / 2])) / p99 \(ms(sorted[sorted.count * 99 / 100])) |")
    }

    static func report(_ name: String, count: Int, elapsed: Duration, latencies: [Duration]?) {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = Int(Double(count) / seconds)
        var latency = "–"
        if let latencies {
            let sorted = latencies.sorted()
            latency = "p50 \(ms(sorted[sorted.count / 2])) / p99 \(ms(sorted[sorted.count * 99 / 100]))"
        }
        print("| \(name) | \(rate.formatted()) ops/s | \(latency) |")
    }

    static func ms(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        return String(format: "%.3f ms", value)
    }
}

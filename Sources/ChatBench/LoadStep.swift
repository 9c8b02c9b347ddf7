import Foundation

/// Runs one target at one concurrency: sets up the virtual users, warms up, then has every user stream its
/// messages one after another while the stack's CPU is counted, and aggregates what was measured.
struct LoadStep: Sendable {
    let target: any StreamTarget
    let concurrency: Int
    let messages: Int
    /// Warm-up streams before the measured phase (one per user at most), not counted.
    let warmup: Int
    let processes: [MonitoredProcess]
    let ownProcesses: [String]
    /// When set (and a process is named `chat-api`), chat-api's connections to this Redis port are sampled.
    let redisPort: Int?

    /// Measures the step; throws only when the set-up fails.
    func run(step: String) async throws -> StepResult {
        let name = "\(target.kind.rawValue) × \(concurrency)"
        log("\(name): preparing \(concurrency) virtual users")
        let users = try await target.prepareUsers(count: concurrency, messages: messages, step: step)
        let warm = min(warmup, concurrency)
        if warm > 0 {
            log("\(name): warm-up, \(warm) streams")
            _ = try await concurrentMap(warm, width: warm) { [target] index in
                await target.stream(user: users[index], message: -1, step: step)
            }
        }

        log("\(name): measuring, \(concurrency) users × \(messages) messages")
        let sampler = redisSampler()
        let before = CPUSnapshot(processes)
        let clock = ContinuousClock()
        let start = clock.now
        let perUser = try await concurrentMap(concurrency, width: concurrency) { [target, messages] index in
            var samples: [StreamSample] = []
            for message in 0..<messages {
                samples.append(await target.stream(user: users[index], message: message, step: step))
            }
            return samples
        }
        let duration = clock.now - start
        let after = CPUSnapshot(processes)
        sampler?.cancel()
        let peak = await sampler?.value
        let samples = perUser.flatMap { $0 }
        let result = StepResult(
            target: target.kind, concurrency: concurrency, messagesPerUser: messages, samples: samples, duration: duration,
            processes: before.usage(until: after, of: processes), ownProcesses: ownProcesses, redisConnectionsPeak: peak
        )
        let errors = result.requests - result.completed
        log("\(name): \(result.completed)/\(result.requests) completed in \(String(format: "%.1f", result.durationSeconds)) s\(errors > 0 ? ", errors \(result.errors)" : "")")
        return result
    }

    /// Samples chat-api's Redis connections every second until cancelled; its value is the peak. (Each sample
    /// reads chat-api's descriptors and the machine's TCP table: every 200 ms, at 100 streams, that was a third
    /// of the load generator's CPU, taken from the cores the full path runs on.)
    private func redisSampler() -> Task<Int, Never>? {
        guard target.kind == .full, let port = redisPort, let api = processes.first(where: { $0.name == "chat-api" }) else { return nil }
        return Task.detached {
            var peak = ProcFS.connections(api.pid, toPort: port)
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                peak = max(peak, ProcFS.connections(api.pid, toPort: port))
            }
            return peak
        }
    }
}

/// A progress line on standard error (standard output carries the report).
func log(_ line: String) {
    FileHandle.standardError.write(Data(("chat-bench: " + line + "\n").utf8))
}

import Foundation

/// The run's figures as Markdown tables: each target's latencies and throughput, what the full path and
/// LiteLLM add over the floor, every process's CPU and memory, and chat-api's own breakdown of its time.
struct MarkdownReport {
    let steps: [StepResult]

    /// All the tables, separated by blank lines.
    func render() -> String {
        [latencyTable(), throughputTable(), addedOverFloorTable(), processTable(), breakdownTable()].joined(separator: "\n\n") + "\n"
    }

    private func table(_ header: [String], _ rows: [[String]]) -> String {
        var lines = ["| " + header.joined(separator: " | ") + " |", "|" + String(repeating: " --- |", count: header.count)]
        lines += rows.map { "| " + $0.joined(separator: " | ") + " |" }
        return lines.joined(separator: "\n")
    }

    private func ms(_ value: Double?) -> String {
        guard let value else { return "–" }
        return value >= 100 ? String(format: "%.0f", value) : String(format: "%.1f", value)
    }

    private func signed(_ value: Double?) -> String {
        guard let value else { return "–" }
        return (value >= 0 ? "+" : "−") + ms(abs(value))
    }

    private func quartet(_ summary: LatencySummary?) -> String {
        guard let summary else { return "–" }
        return "\(ms(summary.p50)) / \(ms(summary.p95)) / \(ms(summary.p99)) / \(ms(summary.max))"
    }

    private func latencyTable() -> String {
        let header = ["target", "streams", "headers", "first chunk", "last chunk", "complete", "total"]
        let rows = steps.map { step in
            [step.target.rawValue, "\(step.concurrency)"] + ["headers", "firstChunk", "lastChunk", "complete", "total"].map { quartet(step.latency[$0]) }
        }
        return "Latency in ms, p50 / p95 / p99 / max, completed requests only:\n\n" + table(header, rows)
    }

    private func throughputTable() -> String {
        let header = ["target", "streams", "requests", "errors", "gap between chunks p50 / p99 / max", "replies/s", "chunks/s", "own CPU-ms per 1k chunks", "chat-api Redis connections (peak)"]
        let rows = steps.map { step -> [String] in
            let errors = step.errors.isEmpty ? "0" : step.errors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
            let gap = step.latency["gap"].map { "\(ms($0.p50)) / \(ms($0.p99)) / \(ms($0.max))" } ?? "–"
            return [
                step.target.rawValue, "\(step.concurrency)", "\(step.requests)", errors, gap,
                String(format: "%.1f", step.repliesPerSecond), String(format: "%.0f", step.chunksPerSecond),
                step.ownCPUMillisecondsPer1kChunks.map { String(format: "%.0f", $0) + " (" + step.ownProcesses.joined(separator: "+") + ")" } ?? "–",
                step.chatAPIRedisConnectionsPeak.map(String.init) ?? "–",
            ]
        }
        return table(header, rows)
    }

    private func addedOverFloorTable() -> String {
        let levels = Array(Set(steps.map(\.concurrency))).sorted()
        func step(_ target: BenchTarget, _ concurrency: Int) -> StepResult? {
            steps.first { $0.target == target && $0.concurrency == concurrency }
        }
        func added(_ target: BenchTarget, _ concurrency: Int, _ metric: String, _ pick: (LatencySummary) -> Double) -> String {
            guard let floor = step(.floor, concurrency)?.latency[metric], let other = step(target, concurrency)?.latency[metric] else { return "–" }
            return signed(pick(other) - pick(floor))
        }
        let header = [
            "streams", "first chunk p50 / p99: floor", "full − floor", "litellm − floor", "last chunk p50: floor", "full − floor", "litellm − floor",
            "replies/s floor / full / litellm", "own CPU-ms per 1k chunks full / litellm",
        ]
        let rows = levels.map { level -> [String] in
            let floorFirst = step(.floor, level)?.latency["firstChunk"].map { "\(ms($0.p50)) / \(ms($0.p99))" } ?? "–"
            let rates = BenchTarget.runOrder.map { target in step(target, level).map { String(format: "%.1f", $0.repliesPerSecond) } ?? "–" }
            let cpu = [BenchTarget.full, .litellm].map { target in step(target, level)?.ownCPUMillisecondsPer1kChunks.map { String(format: "%.0f", $0) } ?? "–" }
            return [
                "\(level)", floorFirst,
                added(.full, level, "firstChunk", \.p50) + " / " + added(.full, level, "firstChunk", \.p99),
                added(.litellm, level, "firstChunk", \.p50) + " / " + added(.litellm, level, "firstChunk", \.p99),
                step(.floor, level)?.latency["lastChunk"].map { ms($0.p50) } ?? "–",
                added(.full, level, "lastChunk", \.p50), added(.litellm, level, "lastChunk", \.p50),
                rates.joined(separator: " / "), cpu.joined(separator: " / "),
            ]
        }
        return "Added over the floor (ms):\n\n" + table(header, rows)
    }

    private func processTable() -> String {
        var names: [String] = []
        for usage in steps.flatMap(\.processes) where !names.contains(usage.name) { names.append(usage.name) }
        guard !names.isEmpty else { return "Processes: none given (`--pid name=PID`)." }
        let rows = steps.map { step -> [String] in
            [step.target.rawValue, "\(step.concurrency)"] + names.map { name in
                guard let usage = step.processes.first(where: { $0.name == name }) else { return "–" }
                let perChunks = step.chunks > 0 ? usage.cpuMilliseconds * 1_000 / Double(step.chunks) : 0
                return String(format: "%.0f (%.0f MiB)", perChunks, Double(usage.peakRSSKiB) / 1_024)
            }
        }
        return "CPU-ms per 1,000 chunks of each process over the measured phase (peak RSS, VmHWM):\n\n" + table(["target", "streams"] + names, rows)
    }

    private func breakdownTable() -> String {
        let full = steps.filter { $0.target == .full }
        guard !full.isEmpty else { return "" }
        guard full.contains(where: { !$0.breakdown.isEmpty }) else {
            return "Breakdown of the full path's time to first chunk: not reported (chat-api sent no `Server-Timing` header and no `spans`)."
        }
        var names = ServerTiming.headerSpans + ServerTiming.eventSpans + [StepResult.residual]
        for step in full { for name in step.breakdown.keys.sorted() where !names.contains(name) { names.append(name) } }
        let rows = full.map { step in
            ["\(step.concurrency)"] + names.map { name in step.breakdown[name].map { "\(ms($0.p50)) / \(ms($0.p99))" } ?? "not reported" }
        }
        let header = ["streams"] + names.map { $0 == StepResult.residual ? "relay and client" : $0 }
        return "Breakdown of the full path (ms, p50 / p99; relay and client = first chunk − headers − pickup − prepare − firstByte − publish):\n\n"
            + table(header, rows)
    }
}

import Foundation

/// The JSON file a run writes: when and where it ran, with which settings, and every step's figures.
struct BenchReportFile: Codable {
    /// The machine the run measured.
    struct Machine: Codable {
        var cores: Int
        var cpuModel: String

        /// This machine: online cores and /proc/cpuinfo's first `model name`.
        static var current: Machine {
            let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
            let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1).last
            return Machine(cores: ProcessInfo.processInfo.activeProcessorCount, cpuModel: model?.trimmingCharacters(in: .whitespaces) ?? "unknown")
        }
    }

    /// The settings that shape the figures.
    struct Settings: Codable {
        var modelID: String
        var replyTokens: Int
        var paceMilliseconds: Int
        var messagesPerUser: Int
        var warmupStreams: Int
    }

    var generated: String
    var machine: Machine
    var settings: Settings
    var steps: [StepResult]

    init(settings: BenchSettings, messagesPerUser: Int, warmup: Int, steps: [StepResult]) {
        generated = ISO8601DateFormatter().string(from: Date())
        machine = .current
        self.settings = Settings(
            modelID: settings.modelID, replyTokens: settings.replyTokens, paceMilliseconds: settings.paceMilliseconds,
            messagesPerUser: messagesPerUser, warmupStreams: warmup
        )
        self.steps = steps
    }

    /// Writes the file as pretty-printed JSON with sorted keys.
    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
    }
}

import ArgumentParser

/// What a run streams from: chat-api (`full`), the emulator straight (`floor`) or the LiteLLM proxy (`litellm`).
enum BenchTarget: String, CaseIterable, Codable, Sendable, ExpressibleByArgument {
    case full
    case floor
    case litellm

    /// The order a step runs its targets in: the floor first, so each step starts from the reference.
    static let runOrder: [BenchTarget] = [.floor, .full, .litellm]

    /// Parses a comma-separated list such as `full,floor`.
    static func list(_ text: String) throws -> [BenchTarget] {
        try text.split(separator: ",").map { name in
            guard let target = BenchTarget(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown target '\(name)' (expected full, floor or litellm)")
            }
            return target
        }
    }
}

import SigV4

/// The emulator's deterministic answer to a prompt: the same seed text and length always give the same words.
struct Reply: Sendable, Equatable {
    /// The words, one output token each.
    let words: [String]
    /// The input token count reported in usage fields, metrics and headers.
    let inputTokens: Int
    /// True when the reply was cut by the request's max tokens (stop reason max-tokens), false for end-turn.
    let cutByMaxTokens: Bool

    /// The output token count: one per word.
    var outputTokens: Int { words.count }

    /// The words joined by single spaces.
    var text: String { words.joined(separator: " ") }

    /// The reply to `prompt`: `min(prompt.maxTokens, wanted)` words drawn from `vocabulary` by a generator seeded
    /// with the SHA-256 of the prompt's seed text, where `wanted` is the `[[tokens:N]]` marker or the configured length.
    init(prompt: ModelPrompt, wanted: Int) {
        var generator = SeededGenerator(sha256Hex: SigV4Signer.sha256Hex(of: Array(prompt.seedText.utf8)))
        let count = min(prompt.maxTokens, wanted)
        words = (0..<count).map { _ in Self.vocabulary[Int(generator.next() % UInt64(Self.vocabulary.count))] }
        inputTokens = prompt.inputTokens
        cutByMaxTokens = wanted > prompt.maxTokens
    }

    /// For `[[echo-settings]]`: the prompt's sampling settings and its max tokens as the words of the reply.
    init(echoing prompt: ModelPrompt) {
        words = prompt.settings + ["maxTokens=\(prompt.maxTokens)"]
        inputTokens = prompt.inputTokens
        cutByMaxTokens = false
    }

    /// The fixed words replies are made of: lower-case ASCII, no punctuation, so a word never splits or merges.
    static let vocabulary = [
        "the", "quick", "river", "stone", "light", "over", "under", "green", "field", "signal",
        "garden", "window", "morning", "silver", "harbor", "quiet", "bright", "north", "south", "answer",
        "cloud", "forest", "paper", "engine", "circle", "market", "bridge", "winter", "summer", "copper",
        "orbit", "lantern", "meadow", "valley", "thread", "canvas", "anchor", "pocket", "ladder", "island",
        "mirror", "candle", "feather", "shadow", "planet", "rocket", "violet", "amber", "cedar", "delta",
        "ember", "falcon", "glacier", "horizon", "jasmine", "kernel", "lagoon", "marble", "nectar", "oasis",
        "pepper", "quartz", "ripple", "sparrow",
    ]
}

/// xoshiro256** seeded from the 32 bytes of a SHA-256: a fast generator whose sequence depends only on the seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose four state words are the digest's bytes read big-endian, eight at a time.
    init(sha256Hex: String) {
        var words: [UInt64] = [0, 0, 0, 0]
        for (index, pair) in Self.hexPairs(sha256Hex).prefix(32).enumerated() {
            words[index / 8] = words[index / 8] << 8 | UInt64(pair)
        }
        if words.allSatisfy({ $0 == 0 }) { words[0] = 1 }  // The all-zero state would only ever produce zeros.
        state = (words[0], words[1], words[2], words[3])
    }

    /// The next 64 random bits.
    mutating func next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, 7) &* 9
        let shifted = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= shifted
        state.3 = rotateLeft(state.3, 45)
        return result
    }

    private func rotateLeft(_ value: UInt64, _ count: UInt64) -> UInt64 {
        (value << count) | (value >> (64 - count))
    }

    private static func hexPairs(_ hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count - 1, by: 2).compactMap { index in
            UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16)
        }
    }
}

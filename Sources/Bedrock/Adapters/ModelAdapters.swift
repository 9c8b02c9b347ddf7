import ChatCore
import Foundation

/// The adapter for each model family.
public enum ModelAdapters {
    /// The adapter that speaks `family`'s request and response bodies.
    public static func adapter(for family: ModelFamily) -> any ModelAdapter {
        switch family {
        case .anthropicClaude: ClaudeAdapter()
        case .amazonNova: NovaAdapter()
        case .amazonTitan: TitanTextAdapter()
        case .metaLlama3: Llama3Adapter()
        case .mistral: MistralAdapter()
        }
    }
}

/// Reading and writing the families' JSON bodies, with decoding failures reported as `ModelResponseError`.
enum AdapterJSON {
    /// The JSON for `value`, keys sorted so equal requests give equal bytes.
    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    /// Decodes `data`, turning every failure into a `ModelResponseError` that says what was wrong and where.
    static func decode<T: Decodable>(_ type: T.Type, from data: Data, family: ModelFamily) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw ModelResponseError(family: family, message: describe(error))
        } catch {
            throw ModelResponseError(family: family, message: "unreadable body: \(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context, _ last: (any CodingKey)? = nil) -> String {
            let keys = context.codingPath + (last.map { [$0] } ?? [])
            let text = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.isEmpty ? "the top level" : String(text.drop { $0 == "." })
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing field \(path(context, key))"
        case .valueNotFound(_, let context): return "null where a value is required at \(path(context))"
        case .typeMismatch(let type, let context):
            let name = String(describing: type)
            let expected = name.hasPrefix("Dictionary") ? "an object" : name.hasPrefix("Array") ? "an array" : name
            return "expected \(expected) at \(path(context))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not a JSON document" : "invalid value at \(path(context))"
        @unknown default: return "undecodable body"
        }
    }
}

extension ModelAdapters {
    /// Appends `strings` as a JSON array of strings, as `JSONEncoder` writes it (for the bodies written by hand).
    static func appendJSONArray(of strings: [String], to json: inout String) {
        json += "["
        for (index, string) in strings.enumerated() {
            json += index > 0 ? #",""# : #"""#
            JSONText.appendEscaped(string, to: &json)
            json += #"""#
        }
        json += "]"
    }

    /// A finite number as JSON text, as `JSONEncoder` writes it (for the bodies written by hand); NaN and
    /// infinities are refused as `JSONEncoder` refuses them.
    static func jsonNumber(_ value: Double, _ field: String) throws -> String {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, EncodingError.Context(codingPath: [], debugDescription: "\(field) is not a finite number"))
        }
        // JSONEncoder writes a Double's description without a trailing ".0" (so -0.0 is "-0", 1e16 is "1e+16").
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }

    /// `amazon-bedrock-invocationMetrics`, which Bedrock adds to the last chunk of every family's stream
    /// (latencies are left out: only the token counts are used).
    struct InvocationMetrics: Decodable {
        var inputTokenCount: Int?
        var outputTokenCount: Int?

        /// The token counts, the only part the service bills by.
        var usage: TokenUsage { TokenUsage(inputTokens: inputTokenCount, outputTokens: outputTokenCount) }
    }

    /// A usage value, or nil when the body reported neither count.
    static func usage(input: Int?, output: Int?) -> TokenUsage? {
        input == nil && output == nil ? nil : TokenUsage(inputTokens: input, outputTokens: output)
    }

    /// The system prompt, nil when absent or empty.
    static func systemPrompt(of request: GenerationRequest) -> String? {
        guard let system = request.system, !system.isEmpty else { return nil }
        return system
    }

    /// The turns as strictly alternating roles starting with the user: blank turns (a reply a stop sequence cut
    /// to nothing) and leading assistant turns dropped, consecutive turns of one role joined with a blank line
    /// (Claude, Nova, Converse and Mistral's template need this; Bedrock refuses a blank text block).
    static func alternatingTurns(of request: GenerationRequest) -> [ConversationTurn] {
        var result: [ConversationTurn] = []
        let written = request.turns.filter { !$0.text.allSatisfy(\.isWhitespace) }
        for turn in written.drop(while: { $0.role == .assistant }) {
            if let last = result.last, last.role == turn.role {
                result[result.count - 1].text = last.text + "\n\n" + turn.text
            } else {
                result.append(turn)
            }
        }
        return result
    }

    /// Nil for an empty list, so optional stop-sequence fields are left out of the body.
    static func stopSequences(of request: GenerationRequest) -> [String]? {
        request.stopSequences.isEmpty ? nil : request.stopSequences
    }
}

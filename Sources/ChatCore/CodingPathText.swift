/// A decoding path as people write it, for errors that say where in a document something is wrong:
/// `models[2].contextWindow`, `messages[0].content`.
public enum CodingPathText {
    /// The keys joined with `.`, list positions in brackets.
    public static func of(_ codingPath: [any CodingKey]) -> String {
        codingPath.reduce("") { text, key in
            key.intValue.map { text + "[\($0)]" } ?? (text.isEmpty ? key.stringValue : text + "." + key.stringValue)
        }
    }
}

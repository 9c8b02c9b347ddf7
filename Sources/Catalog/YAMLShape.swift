import ChatCore
import CYaml

/// What a YAML catalog file may look like before it is built into values, checked on libyaml's events (nothing is
/// built, so the check is linear in the file's size): at most `maxValues` values once every alias is counted as a
/// copy of what it names (a few lines of nested aliases can stand for billions), and mapping keys that are plain
/// values (an alias or a list as a key makes the YAML library hash whole expanded trees). A file libyaml cannot
/// parse passes here: the YAML library then reports the syntax error where it is.
enum YAMLShape {
    /// The most values a file may stand for (the built-in catalog is about 3,000).
    static let maxValues = 100_000

    private struct Collection {
        let isMapping: Bool
        let anchor: String?
        /// The count of values when it began: what it stands for is the count at its end less this.
        let start: Int
        /// In a mapping: whether the next node is a key.
        var expectsKey = true
    }

    /// Throws a `CatalogError` saying what is wrong with `text`'s shape.
    static func check(_ text: String) throws(CatalogError) {
        var bytes = Array(text.utf8)
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw CatalogError("the YAML parser could not start") }
        defer { yaml_parser_delete(&parser) }
        let problem: String? = bytes.withUnsafeMutableBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var open: [Collection] = []
            var anchors: [String: Int] = [:]
            // Every value so far, each alias counted as what its anchor stands for.
            var count = 0
            var keyExpected: Bool { open.last.map { $0.isMapping && $0.expectsKey } ?? false }
            func nodeEnded() {
                if let last = open.indices.last, open[last].isMapping { open[last].expectsKey.toggle() }
            }
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return nil
                case YAML_SCALAR_EVENT:
                    count += 1
                    if let anchor = name(event.data.scalar.anchor) { anchors[anchor] = 1 }
                    nodeEnded()
                case YAML_ALIAS_EVENT:
                    if keyExpected { return "an alias is used as a key; keys must be plain field names" }
                    count += name(event.data.alias.anchor).flatMap { anchors[$0] } ?? 1
                    nodeEnded()
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    if keyExpected { return "a list or an object is used as a key; keys must be plain field names" }
                    let isMapping = event.type == YAML_MAPPING_START_EVENT
                    let anchor = isMapping ? name(event.data.mapping_start.anchor) : name(event.data.sequence_start.anchor)
                    open.append(Collection(isMapping: isMapping, anchor: anchor, start: count))
                    count += 1
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let collection = open.popLast() else { return nil }
                    if let anchor = collection.anchor { anchors[anchor] = count - collection.start }
                    nodeEnded()
                default:
                    break
                }
                if count > maxValues {
                    return "the file stands for more than \(maxValues) values, counting each alias as a copy of what it names"
                }
            }
        }
        if let problem { throw CatalogError(problem) }
    }

    private static func name(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}

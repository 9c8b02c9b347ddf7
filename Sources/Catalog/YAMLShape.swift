internal import CYaml
import ChatCore

/// What a YAML catalog file may look like before it is built into values, checked on libyaml's events (nothing is
/// built, so the check is linear in the file's size): at most `maxValues` values once every alias is counted as a
/// copy of what it names (a few lines of nested aliases can stand for billions); at most `maxKeys` keys in one
/// mapping, a merged block (`<<`) counting as all it holds (the YAML library looks keys up one by one); and keys
/// that are plain values (an alias or a list as a key makes the YAML library hash whole expanded trees). A file
/// libyaml cannot parse passes here: the YAML library then reports the syntax error where it is.
enum YAMLShape {
    /// The most values a file may stand for (the built-in catalog is about 3,000).
    static let maxValues = 100_000
    /// The most keys one mapping may have (a catalog entry has about 20).
    static let maxKeys = 1_000

    /// A list or mapping not closed yet.
    private struct Frame {
        let isMapping: Bool
        let anchor: String?
        /// The count of values when it began: what it stands for is the count at its end less this.
        let start: Int
        /// In a mapping: whether the next node is a key, how many keys it has, and whether the value being read
        /// is merged in (`<<`).
        var expectsKey = true
        var keys = 0
        var merging = false
    }

    /// Throws a `CatalogError` saying what is wrong with `text`'s shape, and where.
    static func check(_ text: String) throws(CatalogError) {
        let bytes = Array(text.utf8)
        // The parser keeps pointers to itself: it lives at one address from start to end.
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else { throw CatalogError("the YAML parser could not start") }
        defer { yaml_parser_delete(parser) }
        let problem: String? = bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
            var stack: [Frame] = []
            var anchors: [String: Int] = [:]
            // Every value so far, each alias counted as what its anchor stands for.
            var count = 0
            var keyExpected: Bool { stack.last.map { $0.isMapping && $0.expectsKey } ?? false }
            /// A node of `values` values ended: a key or a value of the mapping it is in.
            func nodeEnded(values: Int, mergeKey: Bool = false) {
                guard let last = stack.indices.last, stack[last].isMapping else { return }
                if stack[last].expectsKey {
                    stack[last].keys += 1
                    stack[last].merging = mergeKey
                } else if stack[last].merging {
                    stack[last].keys += values
                    stack[last].merging = false
                }
                stack[last].expectsKey.toggle()
            }
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                let line = event.start_mark.line + 1
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return nil
                case YAML_SCALAR_EVENT:
                    count += 1
                    if let anchor = anchorName(event.data.scalar.anchor) { anchors[anchor] = 1 }
                    let scalar = event.data.scalar
                    let isMerge = scalar.length == 2 && scalar.value[0] == UInt8(ascii: "<") && scalar.value[1] == UInt8(ascii: "<")
                    nodeEnded(values: 1, mergeKey: keyExpected && isMerge)
                case YAML_ALIAS_EVENT:
                    if keyExpected { return "line \(line): an alias is used as a key; keys must be plain field names" }
                    let values = anchorName(event.data.alias.anchor).flatMap { anchors[$0] } ?? 1
                    count += values
                    nodeEnded(values: values)
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    if keyExpected { return "line \(line): a list or an object is used as a key; keys must be plain field names" }
                    let isMapping = event.type == YAML_MAPPING_START_EVENT
                    let anchor = isMapping ? anchorName(event.data.mapping_start.anchor) : anchorName(event.data.sequence_start.anchor)
                    stack.append(Frame(isMapping: isMapping, anchor: anchor, start: count))
                    count += 1
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let frame = stack.popLast() else { return nil }
                    let values = count - frame.start
                    if let anchor = frame.anchor { anchors[anchor] = values }
                    nodeEnded(values: values)
                default:
                    break
                }
                if count > maxValues {
                    return "line \(line): the file stands for more than \(maxValues) values, counting each alias as a copy of what it names"
                }
                if let frame = stack.last, frame.keys > maxKeys {
                    return "line \(line): a mapping has more than \(maxKeys) keys, merged ones included"
                }
            }
        }
        if let problem { throw CatalogError(problem) }
    }

    private static func anchorName(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}

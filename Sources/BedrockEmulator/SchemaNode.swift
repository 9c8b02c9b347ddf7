/// One value of a request body with its JSON-pointer-like path (`#/messages/0/role`), read with the checks and the
/// messages of the JSON-schema validator Bedrock runs in front of its models.
struct SchemaNode {
    /// The value at `path`.
    let value: JSONValue
    /// `#` for the document, then one `/name` or `/index` per step.
    let path: String

    /// The document itself.
    init(document: JSONValue) {
        value = document
        path = "#"
    }

    private init(value: JSONValue, path: String) {
        self.value = value
        self.path = path
    }

    /// The member `key` of this object, or nil when absent; throws unless this is an object.
    func optional(_ key: String) throws(ServiceError) -> SchemaNode? {
        try members()
        return value[key].map { SchemaNode(value: $0, path: "\(path)/\(key)") }
    }

    /// The member `key` of this object; throws `required key [key] not found` when absent.
    func required(_ key: String) throws(ServiceError) -> SchemaNode {
        guard let member = try optional(key) else { throw .malformedInput("\(path): required key [\(key)] not found") }
        return member
    }

    /// Throws when this object has a member not in `allowed`, naming the first such member.
    func permitOnly(_ allowed: Set<String>) throws(ServiceError) {
        if let extra = try members().first(where: { !allowed.contains($0.key) }) {
            throw .malformedInput("\(path): extraneous key [\(extra.key)] is not permitted")
        }
    }

    /// The text; throws unless this is a string.
    func string() throws(ServiceError) -> String {
        guard case .string(let text) = value else { throw typeMismatch("String") }
        return text
    }

    /// The number; throws unless this is an integer or a decimal.
    @discardableResult
    func number() throws(ServiceError) -> Double {
        switch value {
        case .integer(let number): Double(number)
        case .number(let number): number
        default: throw typeMismatch("Number")
        }
    }

    /// The integer; throws unless this is an integer, with the schema's wording when it is outside `range`.
    @discardableResult
    func integer(in range: ClosedRange<Int> = Int.min...Int.max) throws(ServiceError) -> Int {
        guard case .integer(let number) = value else { throw typeMismatch("Integer") }
        if number < range.lowerBound {
            throw .malformedInput("\(path): \(number) is not greater or equal to \(range.lowerBound)")
        }
        if number > range.upperBound {
            throw .malformedInput("\(path): \(number) is not less or equal to \(range.upperBound)")
        }
        return number
    }

    /// The elements; throws unless this is an array of at least `minimumCount` elements.
    func array(minimumCount: Int = 0) throws(ServiceError) -> [SchemaNode] {
        guard case .array(let elements) = value else { throw typeMismatch("JSONArray") }
        guard elements.count >= minimumCount else {
            throw .malformedInput("\(path): expected minimum item count: \(minimumCount), found: \(elements.count)")
        }
        return elements.enumerated().map { SchemaNode(value: $0.element, path: "\(path)/\($0.offset)") }
    }

    /// The strings of an array of strings, e.g. stop sequences.
    @discardableResult
    func strings() throws(ServiceError) -> [String] {
        var texts: [String] = []
        for element in try array() {
            texts.append(try element.string())
        }
        return texts
    }

    /// The object's members; throws unless this is an object.
    @discardableResult
    func members() throws(ServiceError) -> [(key: String, value: JSONValue)] {
        guard case .object(let members) = value else { throw typeMismatch("JSONObject") }
        return members
    }

    /// Whether this is a string (for fields that may be a string or an array of blocks).
    var isString: Bool {
        if case .string = value { true } else { false }
    }

    private func typeMismatch(_ expected: String) -> ServiceError {
        .malformedInput("\(path): expected type: \(expected), found: \(value.schemaTypeName)")
    }
}

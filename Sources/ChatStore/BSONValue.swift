import Foundation

/// A BSON value as this store writes and reads it: the few types it needs, no more.
///
/// Documents keep their fields in order, because MongoDB reads meaning into the order of
/// index keys, sort specifications and command names.
enum BSONValue: Sendable, Equatable {
    case string(String)
    case int32(Int32)
    case int64(Int64)
    case double(Double)
    case bool(Bool)
    case null
    /// A BSON date: milliseconds since 1970-01-01T00:00:00Z.
    case dateTime(Int64)
    /// An ObjectId as 24 lowercase hex digits.
    case objectID(String)
    case document(BSONFields)
    case array([BSONValue])

    /// A BSON date for `date`, to the nearest millisecond (nearest, so that a date read back from
    /// a BSON date, whose `* 1000` may land a hair below the integer, converts to the same value).
    static func date(_ date: Date) -> BSONValue {
        .dateTime(Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }

    /// The string, if this is one.
    var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The number as an `Int`, if this is an integer (or a double with no fraction).
    var intValue: Int? {
        switch self {
        case .int32(let value): return Int(value)
        case .int64(let value): return Int(value)
        case .double(let value): return value.rounded() == value ? Int(exactly: value) : nil
        default: return nil
        }
    }

    /// The boolean, if this is one.
    var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The date, if this is a BSON date; exact to the millisecond.
    var dateValue: Date? {
        if case .dateTime(let milliseconds) = self { return Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
        return nil
    }

    /// The ObjectId's hex digits, if this is an ObjectId.
    var objectIDValue: String? {
        if case .objectID(let hex) = self { return hex }
        return nil
    }

    /// The fields, if this is a document.
    var documentValue: BSONFields? {
        if case .document(let fields) = self { return fields }
        return nil
    }

    /// The elements, if this is an array.
    var arrayValue: [BSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }
}

/// The fields of a BSON document, in order; written as a dictionary literal.
struct BSONFields: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    /// The fields in document order.
    var pairs: [(key: String, value: BSONValue)]

    init(_ pairs: [(key: String, value: BSONValue)]) {
        self.pairs = pairs
    }

    init(dictionaryLiteral elements: (String, BSONValue)...) {
        self.pairs = elements.map { (key: $0.0, value: $0.1) }
    }

    /// The value of the first field named `key`, if any.
    subscript(key: String) -> BSONValue? {
        pairs.first { $0.key == key }?.value
    }

    /// Appends a field (a later field of the same name is left to the server to reject).
    mutating func append(_ key: String, _ value: BSONValue) {
        pairs.append((key: key, value: value))
    }

    static func == (lhs: BSONFields, rhs: BSONFields) -> Bool {
        lhs.pairs.count == rhs.pairs.count && zip(lhs.pairs, rhs.pairs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

extension BSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int32) { self = .int32(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: BSONValue...) { self = .array(elements) }
    init(dictionaryLiteral elements: (String, BSONValue)...) {
        self = .document(BSONFields(elements.map { (key: $0.0, value: $0.1) }))
    }
}

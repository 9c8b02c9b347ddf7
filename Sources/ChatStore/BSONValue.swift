import Foundation

/// A BSON value as this store writes and reads it: the few types it needs, no more.
///
/// Documents keep their fields in order, because MongoDB reads meaning into the order of
/// index keys, sort specifications and command names.
package enum BSONValue: Sendable, Equatable {
    /// A UTF-8 string.
    case string(String)
    /// A 32-bit integer.
    case int32(Int32)
    /// A 64-bit integer.
    case int64(Int64)
    /// A 64-bit binary floating-point number.
    case double(Double)
    /// A boolean.
    case bool(Bool)
    /// BSON null.
    case null
    /// A BSON date: milliseconds since 1970-01-01T00:00:00Z.
    case dateTime(Int64)
    /// An ObjectId as 24 lowercase hex digits.
    case objectID(String)
    /// An embedded document.
    case document(BSONFields)
    /// An array.
    case array([BSONValue])

    /// A BSON date for `date`, to the nearest millisecond (nearest, so that a date read back from
    /// a BSON date, whose `* 1000` may land a hair below the integer, converts to the same value).
    package static func date(_ date: Date) -> BSONValue {
        .dateTime(Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }

    /// The string, if this is one.
    package var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The number as an `Int`, if this is an integer (or a double with no fraction).
    package var intValue: Int? {
        switch self {
        case .int32(let value): return Int(value)
        case .int64(let value): return Int(value)
        case .double(let value): return value.rounded() == value ? Int(exactly: value) : nil
        default: return nil
        }
    }

    /// The boolean, if this is one.
    package var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The date, if this is a BSON date; exact to the millisecond.
    package var dateValue: Date? {
        if case .dateTime(let milliseconds) = self { return Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
        return nil
    }

    /// The ObjectId's hex digits, if this is an ObjectId.
    package var objectIDValue: String? {
        if case .objectID(let hex) = self { return hex }
        return nil
    }

    /// The fields, if this is a document.
    package var documentValue: BSONFields? {
        if case .document(let fields) = self { return fields }
        return nil
    }

    /// The elements, if this is an array.
    package var arrayValue: [BSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }
}

/// The fields of a BSON document, in order; written as a dictionary literal.
package struct BSONFields: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    /// The fields in document order.
    package var pairs: [(key: String, value: BSONValue)]

    /// The fields `pairs`, in that order.
    package init(_ pairs: [(key: String, value: BSONValue)]) {
        self.pairs = pairs
    }

    /// The fields of a dictionary literal, in source order.
    package init(dictionaryLiteral elements: (String, BSONValue)...) {
        self.pairs = elements.map { (key: $0.0, value: $0.1) }
    }

    /// The value of the first field named `key`, if any.
    package subscript(key: String) -> BSONValue? {
        pairs.first { $0.key == key }?.value
    }

    /// Appends a field (a later field of the same name is left to the server to reject).
    package mutating func append(_ key: String, _ value: BSONValue) {
        pairs.append((key: key, value: value))
    }

    /// Equal when the same keys hold equal values in the same order.
    package static func == (lhs: BSONFields, rhs: BSONFields) -> Bool {
        lhs.pairs.count == rhs.pairs.count && zip(lhs.pairs, rhs.pairs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

extension BSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    /// A string literal is a BSON string.
    package init(stringLiteral value: String) { self = .string(value) }
    /// An integer literal is a 32-bit integer.
    package init(integerLiteral value: Int32) { self = .int32(value) }
    /// A boolean literal is a BSON boolean.
    package init(booleanLiteral value: Bool) { self = .bool(value) }
    /// An array literal is a BSON array.
    package init(arrayLiteral elements: BSONValue...) { self = .array(elements) }
    /// A dictionary literal is an embedded document, fields in source order.
    package init(dictionaryLiteral elements: (String, BSONValue)...) {
        self = .document(BSONFields(elements.map { (key: $0.0, value: $0.1) }))
    }
}

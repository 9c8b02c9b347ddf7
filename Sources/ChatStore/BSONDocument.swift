@preconcurrency import CMongoc
import ChatCore
import Foundation

/// An owned `bson_t`, built from ordered fields through canonical extended JSON; freed in `deinit`.
///
/// Not `Sendable`: a document is built and used on one thread-pool thread, inside one operation.
final class BSONDocument {
    /// The `bson_t *`, valid until this object is released.
    let pointer: OpaquePointer

    /// Builds the document `fields` describes.
    init(_ fields: BSONFields) throws {
        let json = Array(try Self.canonicalJSON(.document(fields)).utf8)
        var error = bson_error_t()
        // bson_new_from_json copies what it parses, so the buffer only has to live for the call;
        // it reads exactly `count` bytes (no terminating NUL needed).
        let bson = json.withUnsafeBufferPointer { bson_new_from_json($0.baseAddress, $0.count, &error) }
        guard let bson else { throw MongoDriverError(error) }
        pointer = bson
    }

    deinit {
        // We own the heap-allocated bson_t that bson_new_from_json returned.
        bson_destroy(pointer)
    }

    /// The fields of this document (in no particular order).
    func fields() throws -> BSONFields {
        try Self.fields(of: pointer)
    }

    /// The fields of a `bson_t` owned by someone else (a cursor's current document, a reply), read at once.
    static func fields(of bson: OpaquePointer) throws -> BSONFields {
        var length = 0
        // Returns a fresh NUL-terminated copy that we must bson_free, or nil if the document
        // holds invalid UTF-8 (which MongoDB never stores for strings we wrote).
        guard let text = bson_as_canonical_extended_json(bson, &length) else {
            throw MongoDriverError(domain: 0, code: 0, message: "a BSON document could not be written as extended JSON")
        }
        defer { bson_free(text) }
        let data = Data(bytes: text, count: length)
        guard case .document(let fields) = try parse(JSONSerialization.jsonObject(with: data)) else {
            throw MongoDriverError(domain: 0, code: 0, message: "a BSON document was not a JSON object")
        }
        return fields
    }

    // MARK: Writing canonical extended JSON

    /// `value` as canonical extended JSON; every string and key is escaped by JSONSerialization.
    static func canonicalJSON(_ value: BSONValue) throws -> String {
        var out = ""
        try write(value, to: &out)
        return out
    }

    private static func write(_ value: BSONValue, to out: inout String) throws {
        switch value {
        case .string(let text):
            out += try quoted(text)
        case .int32(let number):
            out += #"{"$numberInt":"\#(number)"}"#
        case .int64(let number):
            out += #"{"$numberLong":"\#(number)"}"#
        case .double(let number):
            out += #"{"$numberDouble":"\#(doubleText(number))"}"#
        case .bool(let flag):
            out += flag ? "true" : "false"
        case .null:
            out += "null"
        case .dateTime(let milliseconds):
            out += #"{"$date":{"$numberLong":"\#(milliseconds)"}}"#
        case .objectID(let hex):
            // Validated here so that a malformed id cannot change the JSON's structure.
            guard SessionID.isValid(hex) else {
                throw MongoDriverError(domain: 0, code: 0, message: "not an ObjectId: \(hex.debugDescription)")
            }
            out += #"{"$oid":"\#(hex.lowercased())"}"#
        case .document(let fields):
            out += "{"
            for (index, field) in fields.pairs.enumerated() {
                if index > 0 { out += "," }
                out += try quoted(field.key)
                out += ":"
                try write(field.value, to: &out)
            }
            out += "}"
        case .array(let elements):
            out += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { out += "," }
                try write(element, to: &out)
            }
            out += "]"
        }
    }

    /// A JSON string literal for `text`: quotes, backslashes and control characters escaped.
    private static func quoted(_ text: String) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    private static func doubleText(_ number: Double) -> String {
        if number.isNaN { return "NaN" }
        if number.isInfinite { return number < 0 ? "-Infinity" : "Infinity" }
        return "\(number)"
    }

    // MARK: Reading canonical extended JSON

    /// Turns what JSONSerialization parsed from canonical extended JSON into a value.
    private static func parse(_ object: Any) throws -> BSONValue {
        switch object {
        case let text as String:
            return .string(text)
        case let elements as [Any]:
            return .array(try elements.map(parse))
        case let dictionary as [String: Any]:
            if let wrapped = try wrapper(dictionary) { return wrapped }
            return .document(BSONFields(try dictionary.map { (key: $0.key, value: try parse($0.value)) }))
        case is NSNull:
            return .null
        case let number as NSNumber:
            // JSONSerialization returns `true` and `false` as the boolean NSNumber singletons' class.
            if type(of: number) == type(of: NSNumber(value: true)) { return .bool(number.boolValue) }
            // Canonical extended JSON wraps numbers in strings; the only bare ones are a
            // `$timestamp`'s 32-bit parts, which a double holds exactly.
            return Int64(exactly: number.doubleValue).map(BSONValue.int64) ?? .double(number.doubleValue)
        default:
            throw MongoDriverError(domain: 0, code: 0, message: "unexpected JSON value \(type(of: object))")
        }
    }

    /// The value a one-key `$`-wrapper stands for (`$oid`, `$date`, `$numberInt`, ...), or nil if it is not one.
    private static func wrapper(_ dictionary: [String: Any]) throws -> BSONValue? {
        guard dictionary.count == 1, let (key, inner) = dictionary.first, key.hasPrefix("$") else { return nil }
        switch (key, inner) {
        case ("$oid", let hex as String):
            return .objectID(hex.lowercased())
        case ("$numberInt", let text as String):
            return Int32(text).map(BSONValue.int32)
        case ("$numberLong", let text as String):
            return Int64(text).map(BSONValue.int64)
        case ("$numberDouble", let text as String):
            switch text {
            case "NaN": return .double(.nan)
            case "Infinity": return .double(.infinity)
            case "-Infinity": return .double(-.infinity)
            default: return Double(text).map(BSONValue.double)
            }
        case ("$date", let date as [String: Any]):
            guard date.count == 1, let text = date["$numberLong"] as? String, let milliseconds = Int64(text) else { return nil }
            return .dateTime(milliseconds)
        default:
            return nil
        }
    }
}

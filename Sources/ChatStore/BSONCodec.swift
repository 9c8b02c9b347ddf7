import ChatCore

/// BSON bytes (https://bsonspec.org/spec.html) to and from `BSONFields`, in Swift: no detour through
/// extended JSON text.
///
/// Writes the types `BSONValue` has. Reads every type of the spec, so that any server reply can be walked;
/// the types `BSONValue` lacks (binary, timestamp, decimal128, regex, ...) read as `.null`, since nothing here
/// reads their values. Refuses what is malformed: lengths out of bounds, text that is not UTF-8, nesting
/// deeper than `maxDepth`.
package enum BSONCodec {
    /// The document `fields` as BSON bytes. Throws for a key holding a NUL character (BSON keys are C strings)
    /// or an ObjectId that is not 24 hex digits.
    package static func encode(_ fields: BSONFields) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        try writeDocument(fields.pairs.lazy.map { ($0.key, $0.value) }, to: &out)
        return out
    }

    /// The fields of the BSON document in `bytes` (its length prefix must match); throws when it is malformed.
    package static func decode(_ bytes: UnsafeRawBufferPointer) throws -> BSONFields {
        var reader = Reader(bytes: bytes, offset: 0)
        let fields = try reader.document()
        guard reader.offset == bytes.count else { throw BSONCodec.malformed("trailing bytes after the document") }
        return fields
    }

    // MARK: Writing

    private static func writeDocument<Pairs: Sequence>(_ pairs: Pairs, to out: inout [UInt8]) throws where Pairs.Element == (String, BSONValue) {
        let start = out.count
        out.append(contentsOf: [0, 0, 0, 0])
        for (key, value) in pairs {
            try writeElement(key, value, to: &out)
        }
        out.append(0)
        let length = UInt32(out.count - start)
        withUnsafeBytes(of: length.littleEndian) { out.replaceSubrange(start..<start + 4, with: $0) }
    }

    private static func writeElement(_ key: String, _ value: BSONValue, to out: inout [UInt8]) throws {
        let typeOffset = out.count
        out.append(0)
        guard !key.utf8.contains(0) else { throw BSONCodec.malformed("a key holds a NUL character: \(key.debugDescription)") }
        out.append(contentsOf: key.utf8)
        out.append(0)
        let type: UInt8
        switch value {
        case .double(let number):
            type = 0x01
            append(number.bitPattern, to: &out)
        case .string(let text):
            type = 0x02
            append(UInt32(text.utf8.count + 1), to: &out)
            out.append(contentsOf: text.utf8)
            out.append(0)
        case .document(let fields):
            type = 0x03
            try writeDocument(fields.pairs.lazy.map { ($0.key, $0.value) }, to: &out)
        case .array(let elements):
            type = 0x04
            try writeDocument(elements.enumerated().lazy.map { (String($0.offset), $0.element) }, to: &out)
        case .objectID(let hex):
            type = 0x07
            guard let bytes = objectIDBytes(hex) else { throw BSONCodec.malformed("not an ObjectId: \(hex.debugDescription)") }
            out.append(contentsOf: bytes)
        case .bool(let flag):
            type = 0x08
            out.append(flag ? 1 : 0)
        case .dateTime(let milliseconds):
            type = 0x09
            append(UInt64(bitPattern: milliseconds), to: &out)
        case .null:
            type = 0x0A
        case .int32(let number):
            type = 0x10
            append(UInt32(bitPattern: number), to: &out)
        case .int64(let number):
            type = 0x12
            append(UInt64(bitPattern: number), to: &out)
        }
        out[typeOffset] = type
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    /// The 12 bytes of an ObjectId written as 24 hex digits; nil for anything else.
    private static func objectIDBytes(_ hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count == 24 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(12)
        var index = 0
        while index < 24 {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    // MARK: Reading

    /// The deepest nesting read (MongoDB itself allows 100 levels): deeper input is refused, not recursed into.
    static let maxDepth = 128

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset: Int
        var depth = 0

        /// A whole embedded document (length, elements, NUL) from `offset`.
        mutating func document() throws -> BSONFields {
            depth += 1
            defer { depth -= 1 }
            guard depth <= BSONCodec.maxDepth else { throw BSONCodec.malformed("nested deeper than \(BSONCodec.maxDepth) levels") }
            let start = offset
            let length = Int(try int32())
            guard length >= 5, start + length <= bytes.count else { throw BSONCodec.malformed("a document's length is out of bounds") }
            let end = start + length - 1
            var fields = BSONFields([])
            while offset < end {
                let type = try byte()
                let key = try cString()
                fields.append(key, try value(type))
            }
            guard offset == end, try byte() == 0 else { throw BSONCodec.malformed("a document does not end where its length says") }
            return fields
        }

        mutating func value(_ type: UInt8) throws -> BSONValue {
            switch type {
            case 0x01: return .double(Double(bitPattern: try integer(UInt64.self)))
            case 0x02: return .string(try string())
            case 0x03: return .document(try document())
            case 0x04: return .array(try document().pairs.map(\.value))
            case 0x05:  // binary: length, subtype, bytes
                let length = Int(try int32())
                guard length >= 0 else { throw BSONCodec.malformed("a binary's length is negative") }
                try skip(1 + length)
                return .null
            case 0x06, 0x0A, 0x7F, 0xFF:  // undefined, null, max key, min key
                return .null
            case 0x07: return .objectID(try objectID())
            case 0x08: return .bool(try byte() != 0)
            case 0x09: return .dateTime(Int64(bitPattern: try integer(UInt64.self)))
            case 0x0B:  // regular expression: pattern, options
                _ = try cString()
                _ = try cString()
                return .null
            case 0x0C:  // DBPointer: string, 12 bytes
                _ = try string()
                try skip(12)
                return .null
            case 0x0D, 0x0E:  // JavaScript code, symbol
                _ = try string()
                return .null
            case 0x0F:  // code with scope: total length, then its parts
                let length = Int(try int32())
                guard length >= 4 else { throw BSONCodec.malformed("a code with scope is shorter than its length") }
                try skip(length - 4)
                return .null
            case 0x10: return .int32(try int32())
            case 0x11:  // timestamp
                try skip(8)
                return .null
            case 0x12: return .int64(Int64(bitPattern: try integer(UInt64.self)))
            case 0x13:  // decimal128
                try skip(16)
                return .null
            default:
                throw BSONCodec.malformed("unknown element type \(type)")
            }
        }

        mutating func byte() throws -> UInt8 {
            guard offset < bytes.count else { throw BSONCodec.malformed("the document ends early") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func skip(_ count: Int) throws {
            guard count >= 0, count <= bytes.count - offset else { throw BSONCodec.malformed("the document ends early") }
            offset += count
        }

        mutating func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let size = MemoryLayout<T>.size
            guard size <= bytes.count - offset else { throw BSONCodec.malformed("the document ends early") }
            defer { offset += size }
            return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }

        mutating func int32() throws -> Int32 { Int32(bitPattern: try integer(UInt32.self)) }

        /// A NUL-terminated key.
        mutating func cString() throws -> String {
            guard let end = bytes[offset...].firstIndex(of: 0) else { throw BSONCodec.malformed("a key is not terminated") }
            defer { offset = end + 1 }
            guard let key = String(validating: UnsafeRawBufferPointer(rebasing: bytes[offset..<end]), as: UTF8.self) else {
                throw BSONCodec.malformed("a key is not UTF-8")
            }
            return key
        }

        /// A length-prefixed, NUL-terminated UTF-8 string (which may hold NUL characters).
        mutating func string() throws -> String {
            let length = Int(try int32())
            guard length >= 1, length <= bytes.count - offset, bytes[offset + length - 1] == 0 else { throw BSONCodec.malformed("a string's length is out of bounds") }
            defer { offset += length }
            guard let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length - 1]), as: UTF8.self) else {
                throw BSONCodec.malformed("a string is not UTF-8")
            }
            return text
        }

        mutating func objectID() throws -> String {
            guard 12 <= bytes.count - offset else { throw BSONCodec.malformed("the document ends early") }
            defer { offset += 12 }
            return Hex.lowercase(bytes[offset..<offset + 12])
        }
    }

    private static func malformed(_ why: String) -> MongoDriverError {
        MongoDriverError(domain: 0, code: 0, message: "malformed BSON: \(why)")
    }
}

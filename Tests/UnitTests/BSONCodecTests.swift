import Foundation
import Testing

@testable import ChatStore

@Suite("BSON bytes to and from fields", .timeLimit(.minutes(1)))
struct BSONCodecTests {
    /// bsonspec.org's first example: {"hello": "world"}.
    @Test("the spec's example encodes to its bytes, and back")
    func specExample() throws {
        let bytes: [UInt8] = [0x16, 0, 0, 0, 0x02] + Array("hello".utf8) + [0, 0x06, 0, 0, 0] + Array("world".utf8) + [0, 0]
        #expect(try BSONCodec.encode(["hello": "world"]) == bytes)
        #expect(try bytes.withUnsafeBytes(BSONCodec.decode) == ["hello": "world"])
    }

    /// bsonspec.org's second example: {"BSON": ["awesome", 5.05, 1986]}.
    @Test("the spec's array example encodes to its bytes")
    func specArrayExample() throws {
        let expected: [UInt8] = [
            0x31, 0, 0, 0, 0x04, 0x42, 0x53, 0x4F, 0x4E, 0, 0x26, 0, 0, 0, 0x02, 0x30, 0, 0x08, 0, 0, 0, 0x61, 0x77, 0x65, 0x73, 0x6F, 0x6D, 0x65, 0,
            0x01, 0x31, 0, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x14, 0x40, 0x10, 0x32, 0, 0xC2, 0x07, 0, 0, 0, 0,
        ]
        let fields: BSONFields = ["BSON": ["awesome", .double(5.05), .int32(1986)]]
        #expect(try BSONCodec.encode(fields) == expected)
        #expect(try expected.withUnsafeBytes(BSONCodec.decode) == fields)
    }

    @Test("every written type survives the round trip, in order, with awkward text")
    func roundTrip() throws {
        let awkward = "quote \" nul \u{0} é 中文 😀👩‍👩‍👧 {\"$oid\":\"x\"}"
        let fields: BSONFields = [
            "s": .string(awkward), "i": .int32(-7), "l": .int64(Int64.min), "d": .double(-0.5), "nan": .double(.infinity), "t": true, "f": false,
            "n": .null, "when": .dateTime(1_700_000_000_123), "id": .objectID("0123456789abcdefABCDEF01"),
            "doc": ["z": 1, "a": ["nested": [1, 2, [3]]]], "empty": [:], "list": [],
            awkward.replacingOccurrences(of: "\u{0}", with: ""): 1,
        ]
        let decoded = try BSONCodec.encode(fields).withUnsafeBytes(BSONCodec.decode)
        #expect(decoded.pairs.map(\.key) == fields.pairs.map(\.key))
        #expect(decoded["id"] == .objectID("0123456789abcdefabcdef01"))
        var expected = fields
        expected.pairs[9].value = .objectID("0123456789abcdefabcdef01")
        #expect(decoded == expected)
    }

    @Test("a NUL in a key or a malformed ObjectId is refused when writing")
    func refusedWrites() {
        #expect(throws: MongoDriverError.self) { try BSONCodec.encode(["a\u{0}b": 1]) }
        #expect(throws: MongoDriverError.self) { try BSONCodec.encode(["_id": .objectID("not hex at all, 24 chars")]) }
        #expect(throws: MongoDriverError.self) { try BSONCodec.encode(["_id": .objectID("0123")]) }
    }

    @Test("types this store does not write are walked over as null; truncated or inconsistent bytes are refused")
    func foreignTypesAndMalformedBytes() throws {
        // {"ts": Timestamp(1, 2), "bin": BinData(0, "ab"), "dec": decimal128 zero, "after": 5}
        var body: [UInt8] = [0x11] + Array("ts".utf8) + [0, 2, 0, 0, 0, 1, 0, 0, 0]
        body += [0x05] + Array("bin".utf8) + [0, 2, 0, 0, 0, 0, 0x61, 0x62]
        body += [0x13] + Array("dec".utf8) + [0] + Array(repeating: 0, count: 16)
        body += [0x10] + Array("after".utf8) + [0, 5, 0, 0, 0]
        let document = withUnsafeBytes(of: UInt32(body.count + 5).littleEndian, Array.init) + body + [0]
        let fields = try document.withUnsafeBytes(BSONCodec.decode)
        #expect(fields == ["ts": .null, "bin": .null, "dec": .null, "after": 5])

        let good = try BSONCodec.encode(["a": "text", "b": ["c": 1]])
        for cut in [0, 3, 4, 10, good.count - 1] {
            #expect(throws: MongoDriverError.self) { try Array(good.prefix(cut)).withUnsafeBytes(BSONCodec.decode) }
        }
        var lying = good
        lying[0] &+= 1  // the length says one byte more than there is
        #expect(throws: MongoDriverError.self) { try lying.withUnsafeBytes(BSONCodec.decode) }
        var badType = good
        badType[4] = 0x42
        #expect(throws: MongoDriverError.self) { try badType.withUnsafeBytes(BSONCodec.decode) }
        var badString = good
        badString[7] = 0xFF  // the string's length now runs past the document
        #expect(throws: MongoDriverError.self) { try badString.withUnsafeBytes(BSONCodec.decode) }
    }

    @Test("nesting past the limit, text that is not UTF-8 and a negative binary length are refused, not followed")
    func hostileBytes() throws {
        var deep: BSONValue = .int32(1)
        for _ in 0..<(BSONCodec.maxDepth + 5) { deep = .document(["d": deep]) }
        let bytes = try BSONCodec.encode(["root": deep])
        #expect(throws: MongoDriverError.self) { try bytes.withUnsafeBytes(BSONCodec.decode) }

        var text = try BSONCodec.encode(["a": "xy"])
        text[11] = 0xFF  // the string's first byte: not UTF-8 any more
        #expect(throws: MongoDriverError.self) { try text.withUnsafeBytes(BSONCodec.decode) }

        let body: [UInt8] = [0x05] + Array("bin".utf8) + [0, 0xFF, 0xFF, 0xFF, 0xFF, 0]
        let binary = withUnsafeBytes(of: UInt32(body.count + 5).littleEndian, Array.init) + body + [0]
        #expect(throws: MongoDriverError.self) { try binary.withUnsafeBytes(BSONCodec.decode) }
    }
}

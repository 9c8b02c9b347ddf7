import Foundation
import NIOCore
import Testing

@testable import EventStream

/// The AWS SDK's event-stream vectors: `encoded/<class>/<name>` frames, `decoded/<class>/<name>` expectations.
private enum Vectors {
    static let positiveCount = 5
    static let negativeCount = 4

    /// `AWS_EVENTSTREAM_TESTDATA`, else `<package root>/../shared/testdata/aws-eventstream`.
    static let root: URL = {
        if let path = ProcessInfo.processInfo.environment["AWS_EVENTSTREAM_TESTDATA"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let packageRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return packageRoot.appendingPathComponent("../shared/testdata/aws-eventstream").standardized
    }()

    static func names(_ kind: String) throws -> [String] {
        let folder = root.appendingPathComponent("decoded/\(kind)")
        return try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
    }

    static func encoded(_ kind: String, _ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: root.appendingPathComponent("encoded/\(kind)/\(name)")))
    }

    static func decoded(_ kind: String, _ name: String) throws -> Data {
        try Data(contentsOf: root.appendingPathComponent("decoded/\(kind)/\(name)"))
    }

    static func positiveFrames() throws -> [[UInt8]] {
        try names("positive").map { try encoded("positive", $0) }
    }
}

/// The JSON shape of a positive `decoded/` file.
private struct ExpectedMessage: Decodable {
    enum Scalar: Decodable {
        case bool(Bool), integer(Int64), text(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Int64.self) {
                self = .integer(value)
            } else {
                self = .text(try container.decode(String.self))
            }
        }
    }

    struct Header: Decodable {
        var name: String
        var type: UInt8
        var value: Scalar
    }

    var total_length: Int
    var headers_length: Int
    var prelude_crc: Int64
    var headers: [Header]
    var payload: String
    var message_crc: Int64

    /// The header as the decoder should produce it; the JSON gives types 6, 7 and 9 as base64.
    static func value(of header: Header) throws -> EventStreamHeaderValue {
        switch (header.type, header.value) {
        case (0, .bool(true)): return .bool(true)
        case (1, .bool(false)): return .bool(false)
        case (2, .integer(let n)): return .byte(Int8(n))
        case (3, .integer(let n)): return .short(Int16(n))
        case (4, .integer(let n)): return .integer(Int32(n))
        case (5, .integer(let n)): return .long(n)
        case (8, .integer(let n)): return .timestamp(n)
        case (6, .text(let b64)): return .byteArray(try bytes(base64: b64))
        case (7, .text(let b64)): return .string(String(decoding: try bytes(base64: b64), as: UTF8.self))
        case (9, .text(let b64)): return .uuid(try #require(EventStreamUUID(bytes: try bytes(base64: b64))))
        default: throw EventStreamTestFailure("unexpected header \(header.name) of type \(header.type)")
        }
    }
}

private struct EventStreamTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

private func bytes(base64: String) throws -> [UInt8] {
    guard let data = Data(base64Encoded: base64) else { throw EventStreamTestFailure("bad base64 \(base64)") }
    return Array(data)
}

/// Feeds `wire` in pieces of `pieceSize` bytes, draining after each, and expects no bytes left over.
private func decodeAll(_ wire: [UInt8], pieceSize: Int) throws(EventStreamError) -> [EventStreamMessage] {
    var decoder = EventStreamDecoder()
    var messages: [EventStreamMessage] = []
    var offset = 0
    while offset < wire.count {
        let end = min(offset + pieceSize, wire.count)
        decoder.append(ByteBuffer(bytes: wire[offset..<end]))
        while let message = try decoder.next() { messages.append(message) }
        offset = end
    }
    #expect(decoder.bufferedByteCount == 0)
    return messages
}

/// A frame with these raw header bytes and payload, both CRCs correct.
private func frame(headers: [UInt8], payload: [UInt8] = []) -> [UInt8] {
    var bytes: [UInt8] = []
    func append32(_ value: UInt32) { withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) } }
    append32(UInt32(16 + headers.count + payload.count))
    append32(UInt32(headers.count))
    append32(CRC32.checksum(bytes))
    bytes += headers + payload
    append32(CRC32.checksum(bytes))
    return bytes
}

private func decodeError(_ wire: [UInt8]) -> EventStreamError.Code? {
    do {
        _ = try decodeAll(wire, pieceSize: wire.count)
        return nil
    } catch {
        return error.code
    }
}

private let everyHeaderType: EventStreamMessage = EventStreamMessage(
    headers: [
        "yes": .bool(true), "no": .bool(false), "byte": .byte(-49), "short": .short(-300),
        "integer": .integer(40972), "long": .long(-42_424_242_424), "bytes": .byteArray([0, 1, 0xFF]),
        "string": .string("héllo ✓"), "timestamp": .timestamp(1_700_000_000_123),
        "uuid": .uuid(EventStreamUUID(bytes: Array(1...16))!),
    ],
    payload: ByteBuffer(string: "{\"ok\":true}")
)

@Suite("AWS event-stream framing")
struct EventStreamTests {
    @Test("CRC32 is zlib's, and incremental updates agree with one pass")
    func crc32() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var crc = CRC32()
        for cut in stride(from: 0, to: data.count, by: 37) { crc.update(data[cut..<min(cut + 37, data.count)]) }
        #expect(crc.value == CRC32.checksum(data))
    }

    @Test("every positive vector decodes as described and re-encodes to the same bytes")
    func positiveVectors() throws {
        var count = 0
        for name in try Vectors.names("positive") {
            let wire = try Vectors.encoded("positive", name)
            let expected = try JSONDecoder().decode(ExpectedMessage.self, from: try Vectors.decoded("positive", name))
            var buffer = ByteBuffer(bytes: wire)
            #expect(buffer.getInteger(at: 0, as: UInt32.self) == UInt32(expected.total_length), "\(name)")
            #expect(buffer.getInteger(at: 4, as: UInt32.self) == UInt32(expected.headers_length), "\(name)")
            #expect(buffer.getInteger(at: 8, as: UInt32.self) == UInt32(truncatingIfNeeded: expected.prelude_crc))
            #expect(CRC32.checksum(wire[0..<8]) == UInt32(truncatingIfNeeded: expected.prelude_crc), "\(name)")
            #expect(CRC32.checksum(wire.dropLast(4)) == UInt32(truncatingIfNeeded: expected.message_crc), "\(name)")

            let messages = try decodeAll(wire, pieceSize: wire.count)
            try #require(messages.count == 1, "\(name)")
            let message = messages[0]
            #expect(message.headers.map(\.name) == expected.headers.map(\.name), "\(name)")
            #expect(message.headers.map(\.value) == (try expected.headers.map(ExpectedMessage.value(of:))), "\(name)")
            #expect(Array(message.payload.readableBytesView) == (try bytes(base64: expected.payload)), "\(name)")

            var encoded = ByteBuffer()
            EventStreamEncoder.encode(message, into: &encoded)
            #expect(Array(encoded.readableBytesView) == wire, "\(name)")
            #expect(buffer.readBytes(length: buffer.readableBytes) == wire)
            count += 1
        }
        #expect(count == Vectors.positiveCount)
    }

    @Test("every negative vector fails with the error its decoded file names")
    func negativeVectors() throws {
        var count = 0
        for name in try Vectors.names("negative") {
            let text = String(decoding: try Vectors.decoded("negative", name), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let expected: EventStreamError.Code = switch text {
            case "Prelude checksum mismatch": .preludeChecksumMismatch
            case "Message checksum mismatch": .messageChecksumMismatch
            default: throw EventStreamTestFailure("unknown expectation \(text) for \(name)")
            }
            let wire = try Vectors.encoded("negative", name)
            #expect(decodeError(wire) == expected, "\(name)")
            for pieceSize in [1, 5, 13] {
                #expect(throws: EventStreamError.self) { _ = try decodeAll(wire, pieceSize: pieceSize) }
            }
            count += 1
        }
        #expect(count == Vectors.negativeCount)
    }

    @Test("vectors fed in odd-sized pieces, alone and concatenated, decode the same", arguments: [1, 2, 3, 5, 7, 13, 64])
    func pieces(pieceSize: Int) throws {
        let frames = try Vectors.positiveFrames()
        try #require(frames.count == Vectors.positiveCount)
        let whole = try frames.map { try decodeAll($0, pieceSize: $0.count) }.flatMap { $0 }
        for frame in frames {
            #expect(try decodeAll(frame, pieceSize: pieceSize) == (try decodeAll(frame, pieceSize: frame.count)))
        }
        let stream = Array(repeating: frames.flatMap { $0 }, count: 3).flatMap { $0 }
        let messages = try decodeAll(stream, pieceSize: pieceSize)
        #expect(messages == whole + whole + whole)
    }

    @Test("a message with all ten header types survives a round trip, even byte by byte")
    func roundTrip() throws {
        let wire = Array(EventStreamEncoder.encode(everyHeaderType).readableBytesView)
        #expect(try decodeAll(wire, pieceSize: wire.count) == [everyHeaderType])
        #expect(try decodeAll(wire + wire, pieceSize: 1) == [everyHeaderType, everyHeaderType])
        #expect(Set(everyHeaderType.headers.map(\.value.typeCode)) == Set(0...9))
        #expect(everyHeaderType[header: "uuid"] == .uuid(EventStreamUUID(high: 0x0102_0304_0506_0708, low: 0x090A_0B0C_0D0E_0F10)))
        #expect(EventStreamUUID(bytes: Array(1...16))?.description == "01020304-0506-0708-090a-0b0c0d0e0f10")
        #expect(everyHeaderType.stringHeader("string") == "héllo ✓")
        #expect(everyHeaderType.stringHeader("long") == nil && everyHeaderType[header: "missing"] == nil)
    }

    @Test("a Bedrock chunk frame decodes to its headers and JSON payload")
    func bedrockChunk() throws {
        let inner = #"{"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi"}}"#
        let body = #"{"bytes":"\#(Data(inner.utf8).base64EncodedString())","p":"abc"}"#
        let sent = EventStreamMessage(
            headers: [":event-type": .string("chunk"), ":content-type": .string("application/json"), ":message-type": .string("event")],
            payload: ByteBuffer(string: body)
        )
        let wire = Array(EventStreamEncoder.encode(sent).readableBytesView)
        let messages = try decodeAll(wire + wire, pieceSize: 7)
        #expect(messages == [sent, sent])
        let message = try #require(messages.first)
        #expect(message.stringHeader(":message-type") == "event")
        #expect(message.stringHeader(":event-type") == "chunk")
        #expect(message.stringHeader(":content-type") == "application/json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(message.payload.readableBytesView)) as? [String: String])
        #expect(json["p"] == "abc")
        #expect(try bytes(base64: try #require(json["bytes"])) == Array(inner.utf8))
    }

    @Test("lengths beyond the limits are rejected from the prelude alone")
    func limits() throws {
        func prelude(total: UInt32, headers: UInt32) -> ByteBuffer {
            var buffer = ByteBuffer()
            buffer.writeInteger(total)
            buffer.writeInteger(headers)
            buffer.writeInteger(CRC32.checksum(buffer.readableBytesView))
            return buffer
        }
        func code(total: UInt32, headers: UInt32) -> EventStreamError.Code? {
            var decoder = EventStreamDecoder()
            decoder.append(prelude(total: total, headers: headers))
            do {
                _ = try decoder.next()
                return nil
            } catch { return error.code }
        }
        #expect(code(total: 30 * 1024 * 1024, headers: 0) == .payloadTooLong)
        #expect(code(total: 300 * 1024, headers: 200 * 1024) == .headersTooLong)
        #expect(code(total: 15, headers: 0) == .invalidLength)
        #expect(code(total: 40, headers: 25) == .invalidLength)
        #expect(code(total: UInt32.max, headers: UInt32.max) == .invalidLength)
        let largest = UInt32(16 + EventStreamDecoder.maxHeadersLength + EventStreamDecoder.maxPayloadLength)
        #expect(code(total: largest, headers: UInt32(EventStreamDecoder.maxHeadersLength)) == nil)
    }

    @Test("corrupt frames fail with their own error codes")
    func corruptFrames() throws {
        var wire = Array(EventStreamEncoder.encode(everyHeaderType).readableBytesView)
        var payloadFlip = wire
        payloadFlip[wire.count - 6] ^= 0x01
        #expect(decodeError(payloadFlip) == .messageChecksumMismatch)
        for index in 0..<12 {
            var preludeFlip = wire
            preludeFlip[index] ^= 0x40
            #expect(decodeError(preludeFlip) == .preludeChecksumMismatch, "byte \(index)")
        }
        wire[wire.count - 1] ^= 0x80
        #expect(decodeError(wire) == .messageChecksumMismatch)

        let twice = EventStreamMessage(headers: ["a": .bool(true), "a": .bool(false)])
        #expect(decodeError(Array(EventStreamEncoder.encode(twice).readableBytesView)) == .duplicateHeader)
        let many = EventStreamMessage(headers: (0..<40).map { EventStreamHeader(name: "h\($0 % 39)", value: .byte(1)) })
        #expect(decodeError(Array(EventStreamEncoder.encode(many).readableBytesView)) == .duplicateHeader)

        #expect(decodeError(frame(headers: [1, 0x61, 10])) == .invalidHeaderType)
        #expect(decodeError(frame(headers: [1, 0x61, 4, 0, 0])) == .truncatedHeader)
        #expect(decodeError(frame(headers: [1, 0x61, 7, 0, 5, 0x61])) == .truncatedHeader)
        #expect(decodeError(frame(headers: [5, 0x61])) == .truncatedHeader)
        #expect(decodeError(frame(headers: [1, 0x61])) == .truncatedHeader)
        #expect(decodeError(frame(headers: [1, 0xFF, 0])) == .invalidUTF8)
        #expect(decodeError(frame(headers: [1, 0x61, 7, 0, 2, 0xC3, 0x28])) == .invalidUTF8)
        #expect(decodeError(frame(headers: [1, 0x61, 9] + Array(repeating: 0, count: 16), payload: [1])) == nil)
    }

    @Test("after an error the decoder keeps failing and buffers nothing more")
    func stickyError() throws {
        var wire = Array(EventStreamEncoder.encode(everyHeaderType).readableBytesView)
        wire[20] ^= 0x01
        var decoder = EventStreamDecoder()
        decoder.append(ByteBuffer(bytes: wire))
        #expect(throws: EventStreamError.self) { _ = try decoder.next() }
        decoder.append(EventStreamEncoder.encode(everyHeaderType))
        #expect(decoder.bufferedByteCount == 0)
        #expect { _ = try decoder.next() } throws: { ($0 as? EventStreamError)?.code == .messageChecksumMismatch }
    }

    @Test("a partial frame waits for more bytes and is counted as buffered")
    func partialFrame() throws {
        let wire = Array(EventStreamEncoder.encode(everyHeaderType).readableBytesView)
        var decoder = EventStreamDecoder()
        decoder.append(ByteBuffer(bytes: wire.dropLast()))
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedByteCount == wire.count - 1)
        decoder.append(ByteBuffer(bytes: wire.suffix(1)))
        #expect(try decoder.next() == everyHeaderType)
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedByteCount == 0)
    }
}

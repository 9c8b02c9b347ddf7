import NIOCore
import Testing

@testable import Queue

@Suite("RESP encoding and decoding over hiredis")
struct RespCodecTests {
    @Test("commands are encoded as RESP arrays of bulk strings, binary-safe")
    func encodesCommands() {
        var buffer = ByteBuffer()
        RespEncoder.encode(RedisCommand("SET", "key", "a b\r\nc", ""), into: &buffer)
        #expect(buffer.readString(length: buffer.readableBytes) == "*4\r\n$3\r\nSET\r\n$3\r\nkey\r\n$6\r\na b\r\nc\r\n$0\r\n\r\n")
    }

    @Test("UTF-8 arguments are counted in bytes")
    func encodesUTF8() {
        var buffer = ByteBuffer()
        RespEncoder.encode(RedisCommand("ECHO", "héllo ✓"), into: &buffer)
        #expect(buffer.readString(length: buffer.readableBytes) == "*2\r\n$4\r\nECHO\r\n$10\r\nhéllo ✓\r\n")
    }

    @Test("every reply type decodes, including nil inside an array")
    func decodesReplies() throws {
        let decoder = RespDecoder()
        try decoder.feed(ByteBuffer(string: "+OK\r\n-ERR wrong\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*3\r\n:1\r\n$-1\r\n*1\r\n+x\r\n*-1\r\n"))
        #expect(try decoder.next() == .simpleString("OK"))
        #expect(try decoder.next() == .error("ERR wrong"))
        #expect(try decoder.next() == .integer(42))
        #expect(try decoder.next() == .bulkString(Array("hello".utf8)))
        #expect(try decoder.next() == .null)
        #expect(try decoder.next() == .array([.integer(1), .null, .array([.simpleString("x")])]))
        #expect(try decoder.next() == .null)
        #expect(try decoder.next() == nil)
    }

    @Test("a reply split at every byte boundary decodes once whole", arguments: [1, 2, 3, 7, 13])
    func decodesInPieces(pieceSize: Int) throws {
        let wire = Array("*2\r\n$12\r\nhello\r\nworld\r\n:-7\r\n".utf8)
        let decoder = RespDecoder()
        var values: [RedisValue] = []
        var offset = 0
        while offset < wire.count {
            let end = min(offset + pieceSize, wire.count)
            try decoder.feed(ByteBuffer(bytes: wire[offset..<end]))
            while let value = try decoder.next() { values.append(value) }
            offset = end
        }
        #expect(values == [.array([.bulkString(Array("hello\r\nworld".utf8)), .integer(-7)])])
    }

    @Test("bytes that are not RESP are a protocol error")
    func rejectsGarbage() throws {
        let decoder = RespDecoder()
        try decoder.feed(ByteBuffer(string: "?what\r\n"))
        #expect(throws: RedisClientError.self) { try decoder.next() }
    }

    @Test("only BLOCK reads and the B* pops count as blocking")
    func blockingCommands() {
        #expect(RedisCommand("XREAD", "BLOCK", "10", "STREAMS", "s", "$").isBlocking)
        #expect(RedisCommand("xreadgroup", "GROUP", "g", "c", "block", "0", "STREAMS", "s", ">").isBlocking)
        #expect(!RedisCommand("XREAD", "STREAMS", "s", "0").isBlocking)
        #expect(!RedisCommand("GET", "BLOCK").isBlocking)
    }
}

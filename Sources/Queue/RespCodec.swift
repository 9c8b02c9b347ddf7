import CHiredis
import NIOCore

/// Encodes commands as RESP with hiredis's `redisFormatCommandArgv`.
enum RespEncoder {
    /// Appends the RESP form of `command` to `buffer`.
    static func encode(_ command: RedisCommand, into buffer: inout ByteBuffer) {
        // Pack every argument into one contiguous buffer so that the argv pointers stay valid for the call.
        var storage: [UInt8] = []
        var lengths: [Int] = []
        lengths.reserveCapacity(command.arguments.count)
        for argument in command.arguments {
            let utf8 = argument.utf8
            lengths.append(utf8.count)
            storage.append(contentsOf: utf8)
        }
        storage.withUnsafeBufferPointer { bytes in
            let base = UnsafeRawPointer(bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            var offsets: [UnsafePointer<CChar>?] = []
            offsets.reserveCapacity(lengths.count)
            var offset = 0
            for length in lengths {
                offsets.append((base + offset).assumingMemoryBound(to: CChar.self))
                offset += length
            }
            var target: UnsafeMutablePointer<CChar>?
            let written = offsets.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { argvlen in
                    redisFormatCommandArgv(&target, Int32(argv.count), argv.baseAddress, argvlen.baseAddress)
                }
            }
            guard written > 0, let target else { return }
            // The formatted command is hiredis's allocation: copy it out, then free it with its own function.
            buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(written)))
            redisFreeCommand(target)
        }
    }
}

/// An incremental RESP parser over hiredis's `redisReader`: feed bytes, take whole replies out.
///
/// Not thread-safe: it lives inside one channel handler, on that channel's event loop.
final class RespDecoder {
    private let reader: UnsafeMutablePointer<redisReader>

    /// A parser with no input yet.
    init() {
        reader = redisReaderCreate()
        // The 16 KiB default makes hiredis shrink and regrow its buffer on large replies.
        reader.pointee.maxbuf = 0
    }

    deinit {
        redisReaderFree(reader)
    }

    /// The most bytes handed to hiredis at once. After each reply, hiredis moves its unread bytes to the front
    /// of its buffer once it has consumed 1 KiB; fed a 64 KiB read of small replies at once, that move
    /// repeats for every reply and parsing turns quadratic. Fed in 1 KiB pieces, the moves stay small.
    static let feedSize = 1024

    /// Hands bytes from the socket to the parser and calls `onReply` with every whole reply they complete.
    func decode(_ buffer: ByteBuffer, onReply: (RedisValue) throws -> Void) throws {
        var buffer = buffer
        while buffer.readableBytes > 0, let piece = buffer.readSlice(length: min(Self.feedSize, buffer.readableBytes)) {
            try feed(piece)
            while let value = try next() { try onReply(value) }
        }
    }

    /// Hands bytes from the socket to the parser.
    func feed(_ buffer: ByteBuffer) throws {
        let status = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw RedisClientError(.protocolError, readerError()) }
    }

    /// The next whole reply, or nil when more bytes are needed.
    func next() throws -> RedisValue? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
            throw RedisClientError(.protocolError, readerError())
        }
        guard let raw else { return nil }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }  // frees the whole tree, so convert first
        return Self.convert(reply)
    }

    private func readerError() -> String {
        withUnsafeBytes(of: reader.pointee.errstr) { bytes in
            let text = bytes.prefix { $0 != 0 }
            return text.isEmpty ? "invalid reply" : String(decoding: text, as: UTF8.self)
        }
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            return .bulkString(bytes(node.str, node.len))
        case REDIS_REPLY_STATUS:
            return .simpleString(String(decoding: bytes(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(node.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(node.elements)
            for index in 0..<node.elements {
                if let child = node.element[index] { elements.append(convert(child)) } else { elements.append(.null) }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> [UInt8] {
        guard let pointer, length > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: length))
    }
}

import NIOCore

/// Writes event-stream messages as frames, with both CRCs.
public enum EventStreamEncoder {
    /// Appends `message` as one frame to `buffer`.
    ///
    /// Traps on a message no frame can hold: a header name over 255 UTF-8 bytes, a string or
    /// byte-array value over 65,535 bytes, or a frame over 4 GiB.
    public static func encode(_ message: EventStreamMessage, into buffer: inout ByteBuffer) {
        var headersLength = 0
        for header in message.headers {
            let nameLength = header.name.utf8.count
            precondition(nameLength <= Int(UInt8.max), "event-stream header name over 255 bytes: \(header.name)")
            headersLength += 1 + nameLength + 1 + header.value.encodedValueLength
        }
        let totalLength = EventStreamDecoder.frameOverhead + headersLength + message.payload.readableBytes
        precondition(totalLength <= Int(UInt32.max), "event-stream frame over 4 GiB")

        let start = buffer.writerIndex
        buffer.reserveCapacity(minimumWritableBytes: totalLength)
        buffer.writeInteger(UInt32(totalLength))
        buffer.writeInteger(UInt32(headersLength))
        var checksum = CRC32()
        checksum.update(buffer.readableBytesView.suffix(8))
        buffer.writeInteger(checksum.value)

        for header in message.headers {
            buffer.writeInteger(UInt8(header.name.utf8.count))
            buffer.writeString(header.name)
            writeValue(header.value, named: header.name, into: &buffer)
        }
        buffer.writeImmutableBuffer(message.payload)

        checksum = CRC32()
        let frameStart = start - buffer.readerIndex
        buffer.withUnsafeReadableBytes { bytes in
            checksum.update(UnsafeRawBufferPointer(rebasing: bytes[frameStart..<(frameStart + totalLength - 4)]))
        }
        buffer.writeInteger(checksum.value)
    }

    /// `message` as one frame in a buffer of its own.
    public static func encode(_ message: EventStreamMessage) -> ByteBuffer {
        var buffer = ByteBuffer()
        encode(message, into: &buffer)
        return buffer
    }

    private static func writeValue(_ value: EventStreamHeaderValue, named name: String, into buffer: inout ByteBuffer) {
        buffer.writeInteger(value.typeCode)
        switch value {
        case .bool:
            break
        case .byte(let number):
            buffer.writeInteger(number)
        case .short(let number):
            buffer.writeInteger(number)
        case .integer(let number):
            buffer.writeInteger(number)
        case .long(let number), .timestamp(let number):
            buffer.writeInteger(number)
        case .byteArray(let bytes):
            precondition(bytes.count <= Int(UInt16.max), "event-stream header \(name) over 65,535 bytes")
            buffer.writeInteger(UInt16(bytes.count))
            buffer.writeBytes(bytes)
        case .string(let text):
            let length = text.utf8.count
            precondition(length <= Int(UInt16.max), "event-stream header \(name) over 65,535 bytes")
            buffer.writeInteger(UInt16(length))
            buffer.writeString(text)
        case .uuid(let uuid):
            buffer.writeInteger(uuid.high)
            buffer.writeInteger(uuid.low)
        }
    }
}

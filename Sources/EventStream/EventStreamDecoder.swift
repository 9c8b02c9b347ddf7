import NIOCore

/// Turns a byte stream fed in pieces of any size into event-stream messages, checking every CRC.
///
/// Feed bytes with `append` and call `next` until it returns nil ("need more data"). After an
/// error the stream is corrupt: every later `next` throws the same error and `append` drops bytes.
public struct EventStreamDecoder: Sendable {
    /// The most header bytes one message may declare (botocore's limit, 128 KiB).
    public static let maxHeadersLength = 128 * 1024
    /// The most payload bytes one message may declare (botocore's limit, 24 MiB).
    public static let maxPayloadLength = 24 * 1024 * 1024

    /// Prelude (two lengths and their CRC) plus the trailing message CRC.
    static let frameOverhead = 16
    /// The two lengths and the prelude CRC.
    static let preludeLength = 12

    /// The prelude of the frame at the reader index, once its CRC and lengths have been checked.
    private struct Prelude {
        var totalLength: Int
        var headersLength: Int
        /// The CRC register after the first 8 bytes, to continue over the rest of the message.
        var checksum: CRC32
    }

    private var buffer = ByteBuffer()
    private var prelude: Prelude?
    private var failure: EventStreamError?

    /// A decoder that has seen no bytes.
    public init() {}

    /// Bytes received but not yet returned as messages; nonzero at end of input means a cut-off frame.
    public var bufferedByteCount: Int { buffer.readableBytes }

    /// Adds the readable bytes of `bytes` to the end of the stream.
    public mutating func append(_ bytes: ByteBuffer) {
        guard failure == nil, bytes.readableBytes > 0 else { return }
        if buffer.readableBytes == 0 {
            // Nothing pending: decode straight out of the caller's buffer, no copy.
            buffer = bytes
            return
        }
        // Move the pending bytes to the front only once at least as many have been consumed,
        // so the copying stays proportional to the input.
        if buffer.readerIndex >= buffer.readableBytes {
            buffer.discardReadBytes()
        }
        buffer.writeImmutableBuffer(bytes)
    }

    /// The next complete message, or nil until more bytes arrive.
    public mutating func next() throws(EventStreamError) -> EventStreamMessage? {
        if let failure { throw failure }
        do {
            return try decodeFrame()
        } catch {
            failure = error
            buffer = ByteBuffer()
            prelude = nil
            throw error
        }
    }

    private mutating func decodeFrame() throws(EventStreamError) -> EventStreamMessage? {
        let start = buffer.readerIndex
        let current: Prelude
        if let prelude {
            current = prelude
        } else {
            guard let checked = try readPrelude(at: start) else { return nil }
            current = checked
            prelude = checked
        }
        guard buffer.readableBytes >= current.totalLength else { return nil }

        let crcOffset = start + current.totalLength - 4
        let expected = buffer.getInteger(at: crcOffset, as: UInt32.self)!
        var checksum = current.checksum
        buffer.withUnsafeReadableBytes { bytes in
            checksum.update(UnsafeRawBufferPointer(rebasing: bytes[8..<(current.totalLength - 4)]))
        }
        guard checksum.value == expected else {
            throw EventStreamError(
                .messageChecksumMismatch,
                "Message checksum mismatch: computed \(checksum.value), frame says \(expected)"
            )
        }

        let headersStart = Self.preludeLength
        let headers = try buffer.withUnsafeReadableBytes { bytes in
            EventStreamHeaderParser.parse(
                UnsafeRawBufferPointer(rebasing: bytes[headersStart..<(headersStart + current.headersLength)])
            )
        }.get()
        let payloadLength = current.totalLength - current.headersLength - Self.frameOverhead
        let payload = buffer.getSlice(at: start + headersStart + current.headersLength, length: payloadLength)!

        buffer.moveReaderIndex(forwardBy: current.totalLength)
        prelude = nil
        return EventStreamMessage(headers: headers, payload: payload)
    }

    /// Checks the prelude at `start`: nil while fewer than 12 bytes are buffered.
    private func readPrelude(at start: Int) throws(EventStreamError) -> Prelude? {
        guard buffer.readableBytes >= Self.preludeLength else { return nil }
        let total = buffer.getInteger(at: start, as: UInt32.self)!
        let headers = buffer.getInteger(at: start + 4, as: UInt32.self)!
        let expected = buffer.getInteger(at: start + 8, as: UInt32.self)!
        var checksum = CRC32()
        buffer.withUnsafeReadableBytes { bytes in
            checksum.update(UnsafeRawBufferPointer(rebasing: bytes[0..<8]))
        }
        guard checksum.value == expected else {
            throw EventStreamError(
                .preludeChecksumMismatch,
                "Prelude checksum mismatch: computed \(checksum.value), frame says \(expected)"
            )
        }
        let totalLength = Int(total)
        let headersLength = Int(headers)
        guard totalLength >= Self.frameOverhead, headersLength <= totalLength - Self.frameOverhead else {
            throw EventStreamError(
                .invalidLength,
                "Invalid lengths: total \(totalLength) bytes cannot hold 16 bytes of framing and \(headersLength) of headers"
            )
        }
        guard headersLength <= Self.maxHeadersLength else {
            throw EventStreamError(
                .headersTooLong,
                "Headers of \(headersLength) bytes exceed the limit of \(Self.maxHeadersLength)"
            )
        }
        let payloadLength = totalLength - headersLength - Self.frameOverhead
        guard payloadLength <= Self.maxPayloadLength else {
            throw EventStreamError(
                .payloadTooLong,
                "Payload of \(payloadLength) bytes exceeds the limit of \(Self.maxPayloadLength)"
            )
        }
        return Prelude(totalLength: totalLength, headersLength: headersLength, checksum: checksum)
    }
}

import EventStream
import NIOCore

/// Decoder throughput on a synthetic Bedrock response stream, as Markdown table rows.
///
/// The stream is 100,000 `chunk` frames of about 230 to 400 bytes, shaped like
/// InvokeModelWithResponseStream's (three string headers, a `{"bytes":"<base64>","p":"..."}`
/// payload). It is cut into separate buffers of 16 KiB and of 1 MiB, as a socket would
/// deliver them, and decoded five times at each size; the rows give the median run.
func runDecoderBenchmark() -> [String] {
    let frameCount = 100_000
    let (stream, payloadBytes) = syntheticBedrockStream(frames: frameCount)
    var rows: [String] = []
    for (label, pieceSize) in [("16 KiB", 16 * 1024), ("1 MiB", 1024 * 1024)] {
        let pieces = cut(stream, into: pieceSize)
        var seconds: [Double] = []
        for _ in 0..<5 {
            let clock = ContinuousClock()
            var decoded = (frames: 0, payloadBytes: 0)
            let elapsed = clock.measure { decoded = decode(pieces) }
            precondition(decoded == (frameCount, payloadBytes), "decoder benchmark: wrong result \(decoded)")
            seconds.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        }
        let median = seconds.sorted()[seconds.count / 2]
        let megabytesPerSecond = Double(stream.readableBytes) / median / 1_000_000
        let framesPerSecond = Double(frameCount) / median
        rows.append("| decoder, \(label) pieces | \(Int(megabytesPerSecond.rounded())) MB/s | \(Int(framesPerSecond.rounded())) frames/s |")
    }
    return rows
}

/// Frames and payload bytes decoded from `pieces`, fed in order.
private func decode(_ pieces: [ByteBuffer]) -> (frames: Int, payloadBytes: Int) {
    var decoder = EventStreamDecoder()
    var frames = 0
    var payloadBytes = 0
    do {
        for piece in pieces {
            decoder.append(piece)
            while let message = try decoder.next() {
                frames += 1
                payloadBytes += message.payload.readableBytes
            }
        }
    } catch {
        fatalError("decoder benchmark: \(error)")
    }
    return (frames, payloadBytes)
}

/// `frames` encoded chunk frames in one buffer, and the sum of their payload lengths.
private func syntheticBedrockStream(frames: Int) -> (ByteBuffer, Int) {
    let words = ["the", "model", "streams", "tokens", "quickly", "and", "each", "delta", "carries", "a", "few", "words,"]
    var random = SplitMix64(seed: 0x5EED)
    var stream = ByteBuffer()
    var payloadBytes = 0
    for _ in 0..<frames {
        var text = ""
        let wordCount = 1 + Int(random.next() % 24)
        for _ in 0..<wordCount {
            text += words[Int(random.next() % UInt64(words.count))] + " "
        }
        let event = #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\#(text)"}}"#
        let padding = String(repeating: "x", count: Int(random.next() % 24))
        let body = #"{"bytes":"\#(base64(Array(event.utf8)))","p":"abcdefghij\#(padding)"}"#
        let message = EventStreamMessage(
            headers: [
                ":event-type": .string("chunk"),
                ":content-type": .string("application/json"),
                ":message-type": .string("event"),
            ],
            payload: ByteBuffer(string: body)
        )
        payloadBytes += message.payload.readableBytes
        EventStreamEncoder.encode(message, into: &stream)
    }
    return (stream, payloadBytes)
}

/// `stream` as separately allocated buffers of `size` bytes (the last one shorter).
private func cut(_ stream: ByteBuffer, into size: Int) -> [ByteBuffer] {
    var rest = stream
    var pieces: [ByteBuffer] = []
    while rest.readableBytes > 0 {
        let view = rest.readSlice(length: min(size, rest.readableBytes))!.readableBytesView
        var piece = ByteBufferAllocator().buffer(capacity: view.count)
        piece.writeBytes(view)
        pieces.append(piece)
    }
    return pieces
}

/// Standard base64 with padding.
private func base64(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var output: [UInt8] = []
    output.reserveCapacity((bytes.count + 2) / 3 * 4)
    var index = 0
    while index < bytes.count {
        let chunk = bytes[index..<min(index + 3, bytes.count)]
        var group: UInt32 = 0
        for (position, byte) in chunk.enumerated() { group |= UInt32(byte) << (16 - 8 * position) }
        for position in 0..<4 {
            output.append(position <= chunk.count ? alphabet[Int((group >> (18 - 6 * position)) & 0x3F)] : UInt8(ascii: "="))
        }
        index += 3
    }
    return String(decoding: output, as: UTF8.self)
}

/// A small deterministic generator, so every run measures the same stream.
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

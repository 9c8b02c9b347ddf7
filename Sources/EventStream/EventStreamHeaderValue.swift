/// The value of one event-stream header: one case per wire type, 0 through 9.
public enum EventStreamHeaderValue: Sendable, Hashable {
    /// A boolean; wire type 0 (true) or 1 (false), with no value bytes.
    case bool(Bool)
    /// A signed 8-bit integer; wire type 2.
    case byte(Int8)
    /// A signed 16-bit integer; wire type 3.
    case short(Int16)
    /// A signed 32-bit integer; wire type 4.
    case integer(Int32)
    /// A signed 64-bit integer; wire type 5.
    case long(Int64)
    /// Raw bytes, at most 65,535 of them; wire type 6.
    case byteArray([UInt8])
    /// UTF-8 text, at most 65,535 bytes of it; wire type 7.
    case string(String)
    /// Milliseconds since the Unix epoch; wire type 8.
    case timestamp(Int64)
    /// A 16-byte UUID; wire type 9.
    case uuid(EventStreamUUID)

    /// The wire type code this value is written with.
    public var typeCode: UInt8 {
        switch self {
        case .bool(true): 0
        case .bool(false): 1
        case .byte: 2
        case .short: 3
        case .integer: 4
        case .long: 5
        case .byteArray: 6
        case .string: 7
        case .timestamp: 8
        case .uuid: 9
        }
    }

    /// The number of value bytes that follow the type code on the wire.
    var encodedValueLength: Int {
        switch self {
        case .bool: 0
        case .byte: 1
        case .short: 2
        case .integer: 4
        case .long, .timestamp: 8
        case .byteArray(let bytes): 2 + bytes.count
        case .string(let text): 2 + text.utf8.count
        case .uuid: 16
        }
    }
}

/// Exactly sixteen bytes, as a UUID header carries them (most significant byte first).
public struct EventStreamUUID: Sendable, Hashable, CustomStringConvertible {
    /// Bytes 0 to 7, big-endian.
    public var high: UInt64
    /// Bytes 8 to 15, big-endian.
    public var low: UInt64

    /// A UUID from its two big-endian halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A UUID from exactly 16 bytes; nil for any other count.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 {
                high = high << 8 | UInt64(byte)
            } else {
                low = low << 8 | UInt64(byte)
            }
        }
        self.init(high: high, low: low)
    }

    /// The 16 bytes in wire order.
    public var bytes: [UInt8] {
        (0..<16).map { index in
            let half = index < 8 ? high : low
            return UInt8(truncatingIfNeeded: half >> (8 * (7 - index % 8)))
        }
    }

    /// The canonical lowercase 8-4-4-4-12 form.
    public var description: String {
        let hex = bytes.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }
        return [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { hex[$0].joined() }.joined(separator: "-")
    }
}

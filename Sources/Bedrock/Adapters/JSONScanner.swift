import ChatCore

/// A forward reader of JSON bytes for the few exact shapes read on the hot path (a model's text deltas), so they
/// skip a decoder; it answers nil for anything it does not know, and the caller goes through `JSONDecoder`.
struct JSONScanner {
    private let bytes: UnsafeRawBufferPointer
    private(set) var index = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Whether every byte was read.
    var atEnd: Bool { index == bytes.count }

    /// The next byte, not consumed.
    var next: UInt8? { index < bytes.count ? bytes[index] : nil }

    /// Consumes `literal` if the bytes continue with it exactly.
    mutating func expect(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        for offset in 0..<count where bytes[index + offset] != literal.utf8Start[offset] { return false }
        index += count
        return true
    }

    /// Consumes one or more ASCII digits.
    mutating func digits() -> Bool {
        let start = index
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
        return index > start
    }

    /// Reads the rest of a string whose opening quote was consumed, through its closing quote: its UTF-8 bytes
    /// with the short escapes decoded; nil for `\u` escapes, raw control characters or a missing closing quote.
    /// `reserve` caps the bytes set aside up front (the rest of the input by default).
    mutating func stringBody(reserve: Int = .max) -> [UInt8]? {
        var text: [UInt8] = []
        text.reserveCapacity(min(reserve, bytes.count - index))
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return text
            case UInt8(ascii: "\\"):
                // \u escapes and anything invalid: the decoder's business.
                guard index < bytes.count, let unescaped = JSONText.unescaped(bytes[index]) else { return nil }
                index += 1
                text.append(unescaped)
            case 0..<0x20:
                return nil  // a raw control character is not JSON
            default:
                text.append(byte)
            }
        }
        return nil
    }

    /// A string's text as valid UTF-8, or nil.
    static func text(_ bytes: [UInt8]) -> String? {
        String(validating: bytes, as: UTF8.self)
    }
}

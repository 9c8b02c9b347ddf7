/// Random identifiers from the system's cryptographically secure generator (`SystemRandomNumberGenerator`),
/// drawn 64 bits per call, written as lowercase hex.
public enum RandomID {
    /// `count` random bytes as `2 × count` lowercase hex digits.
    public static func hex(bytes count: Int) -> String {
        precondition(count >= 0, "RandomID.hex: a negative byte count")
        var generator = SystemRandomNumberGenerator()
        let words = (0..<(count + 7) / 8).map { _ in generator.next() as UInt64 }
        return words.withUnsafeBytes { Hex.lowercase($0.prefix(count)) }
    }

    /// A random (version 4, RFC 9562) UUID in its lowercase text form, `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`.
    public static func uuidString() -> String {
        var generator = SystemRandomNumberGenerator()
        // Bytes 0-7 from `high`, 8-15 from `low`, most significant first; then the version and variant bits.
        let high = (generator.next() as UInt64) & 0xffff_ffff_ffff_0fff | 0x0000_0000_0000_4000
        let low = (generator.next() as UInt64) & 0x3fff_ffff_ffff_ffff | 0x8000_0000_0000_0000
        return String(unsafeUninitializedCapacity: 36) { text in
            var position = 0
            for index in 0..<16 {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    text[position] = UInt8(ascii: "-")
                    position += 1
                }
                let word = index < 8 ? high : low
                let byte = UInt8(truncatingIfNeeded: word >> (8 * UInt64(7 - index % 8)))
                text[position] = Hex.digits[Int(byte >> 4)]
                text[position + 1] = Hex.digits[Int(byte & 0x0f)]
                position += 2
            }
            return position
        }
    }
}

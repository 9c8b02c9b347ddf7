/// Bytes as lowercase hex, two digits each (ids, ObjectIds).
public enum Hex {
    static let digits = Array("0123456789abcdef".utf8)

    /// `bytes` as `2 × count` lowercase hex digits.
    public static func lowercase(_ bytes: some Collection<UInt8>) -> String {
        String(unsafeUninitializedCapacity: 2 * bytes.count) { text in
            var position = 0
            for byte in bytes {
                text[position] = digits[Int(byte >> 4)]
                text[position + 1] = digits[Int(byte & 0x0f)]
                position += 2
            }
            return position
        }
    }
}

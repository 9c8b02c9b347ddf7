/// Random identifiers drawn from the system's generator 64 bits at a time (one `getrandom` per 8 bytes), where
/// Foundation's `UUID()` opens and reads `/dev/urandom` on every call and `UInt8.random` asks the kernel once per
/// byte: the ids of a request (its request id, job, reservation, stream lease, trace and spans) cost a few
/// system calls rather than a few dozen.
public enum RandomID {
    private static let digits = Array("0123456789abcdef".utf8)

    /// `count` random bytes as `2 × count` lowercase hex digits.
    public static func hex(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var word: UInt64 = 0
        return String(unsafeUninitializedCapacity: 2 * count) { text in
            for index in 0..<count {
                if index % 8 == 0 { word = generator.next() }
                let byte = UInt8(truncatingIfNeeded: word >> (8 * UInt64(index % 8)))
                text[2 * index] = digits[Int(byte >> 4)]
                text[2 * index + 1] = digits[Int(byte & 0x0f)]
            }
            return 2 * count
        }
    }

    /// A random (version 4, RFC 9562) UUID in its lowercase text form, `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`.
    public static func uuid() -> String {
        var generator = SystemRandomNumberGenerator()
        let high: UInt64 = generator.next()
        let low: UInt64 = generator.next()
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<8 {
            bytes[index] = UInt8(truncatingIfNeeded: high >> (8 * UInt64(index)))
            bytes[8 + index] = UInt8(truncatingIfNeeded: low >> (8 * UInt64(index)))
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        return String(unsafeUninitializedCapacity: 36) { text in
            var position = 0
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    text[position] = UInt8(ascii: "-")
                    position += 1
                }
                text[position] = digits[Int(byte >> 4)]
                text[position + 1] = digits[Int(byte & 0x0f)]
                position += 2
            }
            return position
        }
    }
}

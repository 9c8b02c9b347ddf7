@preconcurrency import CMongoc

/// MongoDB ObjectIds, written as 24 lowercase hex digits.
public enum ObjectID {
    /// A fresh ObjectId: unique across processes (libbson's counter, process id and time).
    public static func make() -> String {
        var oid = bson_oid_t()
        // A NULL context selects libbson's default, thread-safe context (counter and process id).
        bson_oid_init(&oid, nil)
        return withUnsafeBytes(of: oid.bytes) { bytes in
            var text = ""
            text.reserveCapacity(24)
            for byte in bytes {
                text.append(Character(Unicode.Scalar(Self.hex[Int(byte >> 4)])))
                text.append(Character(Unicode.Scalar(Self.hex[Int(byte & 0x0f)])))
            }
            return text
        }
    }

    private static let hex = Array("0123456789abcdef".utf8)
}

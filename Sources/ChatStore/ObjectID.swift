@preconcurrency import CMongoc
import ChatCore

/// MongoDB ObjectIds, written as 24 lowercase hex digits.
public enum ObjectID {
    /// A fresh ObjectId: unique across processes (libbson's counter, process id and time).
    public static func make() -> String {
        var oid = bson_oid_t()
        // A NULL context selects libbson's default, thread-safe context (counter and process id).
        bson_oid_init(&oid, nil)
        return withUnsafeBytes(of: oid.bytes) { Hex.lowercase($0) }
    }
}

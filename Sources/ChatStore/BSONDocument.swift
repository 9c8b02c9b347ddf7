@preconcurrency import CMongoc

/// An owned `bson_t`, built from ordered fields by `BSONCodec`; freed in `deinit`.
///
/// Not `Sendable`: a document is built and used on one thread-pool thread, inside one operation.
final class BSONDocument {
    /// The `bson_t *`, valid until this object is released.
    let pointer: OpaquePointer

    /// Builds the document `fields` describes.
    init(_ fields: BSONFields) throws {
        let bytes = try BSONCodec.encode(fields)
        // bson_new_from_data copies the bytes, so the buffer only has to live for the call; it returns NULL
        // when they are not a document of that length.
        guard let bson = bytes.withUnsafeBufferPointer({ bson_new_from_data($0.baseAddress, $0.count) }) else {
            throw MongoDriverError(domain: 0, code: 0, message: "libbson refused a document")
        }
        pointer = bson
    }

    deinit {
        // We own the heap-allocated bson_t that bson_new_from_data returned.
        bson_destroy(pointer)
    }

    /// The fields of this document.
    func fields() throws -> BSONFields {
        try Self.fields(of: pointer)
    }

    /// The fields of a `bson_t` owned by someone else (a cursor's current document, a reply), read at once.
    static func fields(of bson: OpaquePointer) throws -> BSONFields {
        // A bson_t's data is one BSON document whose first four bytes give its length.
        guard let data = bson_get_data(bson) else { throw MongoDriverError(domain: 0, code: 0, message: "a BSON document had no data") }
        let length = Int(UInt32(littleEndian: UnsafeRawPointer(data).loadUnaligned(as: UInt32.self)))
        return try BSONCodec.decode(UnsafeRawBufferPointer(start: data, count: length))
    }
}

@preconcurrency import CMongoc

/// One collection, borrowed from a client for the span of one operation on one pool thread.
///
/// Not `Sendable` and never stored: the `mongoc_collection_t` is destroyed when `with` returns.
package struct MongoCollection {
    private let collection: OpaquePointer

    private init(collection: OpaquePointer) {
        self.collection = collection
    }

    /// Runs `body` with collection `name` of database `database` through `client`.
    @discardableResult
    package static func with<T>(
        _ name: String, in database: String, client: OpaquePointer, _ body: (MongoCollection) throws -> T
    ) rethrows -> T {
        // mongoc_client_get_collection copies both names and never fails; the handle must not
        // outlive the client, which is why it is destroyed here, before the client is pushed back.
        let collection: OpaquePointer = mongoc_client_get_collection(client, database, name)
        defer { mongoc_collection_destroy(collection) }
        return try body(MongoCollection(collection: collection))
    }

    /// The documents matching `filter`, as `options` (sort, skip, limit) shape the result.
    package func find(_ filter: BSONFields, options: BSONFields = [:]) throws -> [BSONFields] {
        let filter = try BSONDocument(filter)
        let options = try BSONDocument(options)
        // Never returns NULL: errors surface through mongoc_cursor_error after the loop.
        let cursor: OpaquePointer = mongoc_collection_find_with_opts(collection, filter.pointer, options.pointer, nil)
        return try Self.drain(cursor)
    }

    /// The documents an aggregation `pipeline` (an array of stages) produces.
    package func aggregate(_ pipeline: [BSONValue]) throws -> [BSONFields] {
        // libmongoc takes the stages either as an array or as a document with a `pipeline` field.
        let pipeline = try BSONDocument(["pipeline": .array(pipeline)])
        // Never returns NULL: errors surface through mongoc_cursor_error after the loop.
        let cursor: OpaquePointer = mongoc_collection_aggregate(collection, MONGOC_QUERY_NONE, pipeline.pointer, nil, nil)
        return try Self.drain(cursor)
    }

    /// Reads every document of `cursor`, then destroys it; throws the cursor's error, if any.
    private static func drain(_ cursor: OpaquePointer) throws -> [BSONFields] {
        defer { mongoc_cursor_destroy(cursor) }
        var documents: [BSONFields] = []
        var current: OpaquePointer?
        // `current` belongs to the cursor and is valid only until the next call: read it at once.
        while mongoc_cursor_next(cursor, &current), let current {
            documents.append(try BSONDocument.fields(of: current))
        }
        var error = bson_error_t()
        if mongoc_cursor_error(cursor, &error) { throw MongoDriverError(error) }
        return documents
    }

    /// How many documents match `filter`.
    package func count(_ filter: BSONFields) throws -> Int {
        let filter = try BSONDocument(filter)
        var error = bson_error_t()
        // `reply` may be NULL for this call; -1 means failure, described in `error`.
        let count = mongoc_collection_count_documents(collection, filter.pointer, nil, nil, nil, &error)
        guard count >= 0 else { throw MongoDriverError(error) }
        return Int(count)
    }

    /// Inserts `document`, which carries its own `_id`.
    package func insertOne(_ document: BSONFields) throws {
        let document = try BSONDocument(document)
        var error = bson_error_t()
        try withReply { reply in
            guard mongoc_collection_insert_one(collection, document.pointer, nil, reply, &error) else { throw MongoDriverError(error) }
        }
    }

    /// Applies `update` to the first document matching `filter`; returns how many matched (0 or 1).
    package func updateOne(_ filter: BSONFields, _ update: BSONFields) throws -> Int {
        let filter = try BSONDocument(filter)
        let update = try BSONDocument(update)
        var error = bson_error_t()
        return try withReply { reply in
            guard mongoc_collection_update_one(collection, filter.pointer, update.pointer, nil, reply, &error) else {
                throw MongoDriverError(error)
            }
            return try BSONDocument.fields(of: reply)["matchedCount"]?.intValue ?? 0
        }
    }

    /// Deletes the first document matching `filter`; returns how many went (0 or 1).
    package func deleteOne(_ filter: BSONFields) throws -> Int {
        try delete(filter, many: false)
    }

    /// Deletes every document matching `filter`; returns how many went.
    package func deleteMany(_ filter: BSONFields) throws -> Int {
        try delete(filter, many: true)
    }

    private func delete(_ filter: BSONFields, many: Bool) throws -> Int {
        let filter = try BSONDocument(filter)
        var error = bson_error_t()
        return try withReply { reply in
            let deleted =
                many
                ? mongoc_collection_delete_many(collection, filter.pointer, nil, reply, &error)
                : mongoc_collection_delete_one(collection, filter.pointer, nil, reply, &error)
            guard deleted else { throw MongoDriverError(error) }
            return try BSONDocument.fields(of: reply)["deletedCount"]?.intValue ?? 0
        }
    }

    /// Runs a write command (`createIndexes`, ...) on this collection's database; returns the reply.
    @discardableResult
    package func writeCommand(_ command: BSONFields) throws -> BSONFields {
        let command = try BSONDocument(command)
        var error = bson_error_t()
        return try withReply { reply in
            guard mongoc_collection_write_command_with_opts(collection, command.pointer, nil, reply, &error) else {
                throw MongoDriverError(error)
            }
            return try BSONDocument.fields(of: reply)
        }
    }
}

/// Runs `body` with an initialized `bson_t` for libmongoc to write a reply into, then frees it.
///
/// `bson_t` is declared 128-byte aligned, so Swift cannot just take `&` of a value: the storage
/// is allocated with the C type's own size and alignment. libmongoc (re)initializes the reply
/// on every path; an inline-initialized `bson_t` owns no heap memory, so being overwritten by
/// that cannot leak, and the final `bson_destroy` frees whatever the reply grew into.
func withReply<T>(_ body: (OpaquePointer) throws -> T) rethrows -> T {
    let storage = UnsafeMutableRawPointer.allocate(byteCount: chat_bson_size(), alignment: chat_bson_alignment())
    defer { storage.deallocate() }
    let reply = OpaquePointer(storage)
    bson_init(reply)
    defer { bson_destroy(reply) }
    return try body(reply)
}

/// Runs a command that writes (`insert`, `bulkWrite`) against `database` through `client`, with the client's
/// write concern (from the URI) applied and a write-concern error reported as a failure; returns the reply.
@discardableResult
package func runWriteCommand(_ command: BSONFields, database: String, client: OpaquePointer) throws -> BSONFields {
    let command = try BSONDocument(command)
    var error = bson_error_t()
    return try withReply { reply in
        guard mongoc_client_write_command_with_opts(client, database, command.pointer, nil, reply, &error) else {
            throw MongoDriverError(error)
        }
        return try BSONDocument.fields(of: reply)
    }
}

/// Runs `command` against database `database` through `client` (`ping`, `dropDatabase`); returns the reply.
@discardableResult
package func runCommand(_ command: BSONFields, database: String, client: OpaquePointer) throws -> BSONFields {
    let command = try BSONDocument(command)
    var error = bson_error_t()
    return try withReply { reply in
        // The database name is copied for the call; NULL read preferences mean primary.
        guard mongoc_client_command_simple(client, database, command.pointer, nil, reply, &error) else {
            throw MongoDriverError(error)
        }
        return try BSONDocument.fields(of: reply)
    }
}

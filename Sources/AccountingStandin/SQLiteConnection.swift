import CSQLite
import Foundation

/// An error SQLite reported: its result code and message.
struct SQLiteError: Error, CustomStringConvertible {
    /// SQLite's extended result code.
    let code: Int32
    let message: String

    var description: String { "SQLite error \(code): \(message)" }
}

/// One SQLite connection, with its prepared statements kept for reuse. Not thread-safe: one thread uses it
/// at a time (`AccountDatabase` runs every call on a thread of its own, never on an event loop).
final class SQLiteConnection {
    private var handle: OpaquePointer?
    private var statements: [String: SQLiteStatement] = [:]

    /// Opens (creating it if needed) the database file at `path`.
    init(path: String) throws {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            handle = nil
            throw SQLiteError(code: status, message: "\(message) (\(path))")
        }
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit { close() }

    /// Finalizes every statement and closes the connection; later calls throw.
    func close() {
        statements.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Runs `sql`, one or more statements without parameters or results (schema, pragmas, transactions).
    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(try open(), sql, nil, nil, &message)
        defer { sqlite3_free(message) }
        guard status == SQLITE_OK else {
            throw SQLiteError(code: status, message: message.map { String(cString: $0) } ?? lastMessage)
        }
    }

    /// The prepared statement for `sql` (prepared once, then reused), reset and with `values` bound in order.
    func statement(_ sql: String, _ values: [SQLiteValue] = []) throws -> SQLiteStatement {
        let statement: SQLiteStatement
        if let cached = statements[sql] {
            statement = cached
        } else {
            var raw: OpaquePointer?
            let status = sqlite3_prepare_v3(try open(), sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
            guard status == SQLITE_OK, let raw else { throw SQLiteError(code: status, message: lastMessage) }
            statement = SQLiteStatement(raw, connection: self)
            statements[sql] = statement
        }
        try statement.reset(binding: values)
        return statement
    }

    /// Runs a statement that returns no rows; returns how many rows it changed.
    @discardableResult
    func run(_ sql: String, _ values: [SQLiteValue] = []) throws -> Int {
        let statement = try statement(sql, values)
        defer { statement.finish() }
        while try statement.step() {}
        return Int(sqlite3_changes(handle))
    }

    /// Every row `sql` returns, each made into a `T` by `row`. The statement is reset afterwards, also when
    /// `row` throws, so it never holds a read snapshot open.
    func rows<T>(_ sql: String, _ values: [SQLiteValue] = [], _ row: (SQLiteStatement) throws -> T) throws -> [T] {
        let statement = try statement(sql, values)
        defer { statement.finish() }
        var results: [T] = []
        while try statement.step() { results.append(try row(statement)) }
        return results
    }

    /// Whether `close()` was called.
    var isClosed: Bool { handle == nil }

    /// Whether a transaction is open (SQLite ends one by itself after some errors).
    var inTransaction: Bool { handle.map { sqlite3_get_autocommit($0) == 0 } ?? false }

    /// The message of the last error on this connection.
    var lastMessage: String { handle.map { String(cString: sqlite3_errmsg($0)) } ?? "the connection is closed" }

    private func open() throws -> OpaquePointer {
        guard let handle else { throw SQLiteError(code: SQLITE_MISUSE, message: "the connection is closed") }
        return handle
    }
}

/// A value bound to a statement's parameter.
enum SQLiteValue {
    case integer(Int64)
    case text(String)
    case blob([UInt8])
    case null
}

/// A prepared statement of a `SQLiteConnection`: bind, step, read columns.
final class SQLiteStatement {
    private let raw: OpaquePointer
    private unowned let connection: SQLiteConnection

    fileprivate init(_ raw: OpaquePointer, connection: SQLiteConnection) {
        self.raw = raw
        self.connection = connection
    }

    deinit { sqlite3_finalize(raw) }

    fileprivate func reset(binding values: [SQLiteValue]) throws {
        sqlite3_reset(raw)
        sqlite3_clear_bindings(raw)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .integer(let number): status = sqlite3_bind_int64(raw, index, number)
            case .text(let text):
                // With its length in bytes, so that a NUL inside the text is kept rather than ending it.
                status = sqlite3_bind_text(raw, index, text, Int32(text.utf8.count), csqlite_transient())
            case .blob(let bytes):
                status = bytes.withUnsafeBytes { sqlite3_bind_blob(raw, index, $0.baseAddress, Int32($0.count), csqlite_transient()) }
            case .null: status = sqlite3_bind_null(raw, index)
            }
            guard status == SQLITE_OK else { throw SQLiteError(code: status, message: connection.lastMessage) }
        }
    }

    /// Resets the statement after its last use (its bindings stay until the next `reset(binding:)`).
    fileprivate func finish() { sqlite3_reset(raw) }

    /// Advances to the next row: true when there is one, false when the statement is done.
    func step() throws -> Bool {
        switch sqlite3_step(raw) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let status:
            let error = SQLiteError(code: status, message: connection.lastMessage)
            sqlite3_reset(raw)
            throw error
        }
    }

    /// Column `index` of the current row as an integer (0 for NULL).
    func integer(_ index: Int32) -> Int64 { sqlite3_column_int64(raw, index) }

    /// Column `index` of the current row as text, nil for NULL.
    func text(_ index: Int32) -> String? {
        guard let bytes = sqlite3_column_text(raw, index) else { return nil }
        return String(cString: bytes)
    }

    /// Column `index` of the current row as the bytes of a blob (empty for NULL), valid until the next step.
    func blob(_ index: Int32) -> UnsafeRawBufferPointer {
        let count = Int(sqlite3_column_bytes(raw, index))
        guard let base = sqlite3_column_blob(raw, index), count > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base, count: count)
    }
}

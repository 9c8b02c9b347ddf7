import ChatStore
import Foundation

// How accounts and usage are laid out in their collections.
//
// accounts: { _id: userId, version, available, reserved, nextDeadline: Date, updatedAt: Date,
//             allocations: [{ id, originalCredits, remaining, expiresAt, notes?, allocatedBy, createdAt }],
//             entries: [{ id, kind, status, sessionId?, chatSessionId?, service, operation, modelId?,
//                         estimatedTokens?, reservedCredits, held, draws: [{ allocationId, credits }],
//                         createdAt, expiresAt, settlement?: { creditsUsed, refund, forfeited, actualCost,
//                         inputTokens, outputTokens, success, settledAt } }] }
// usage:    { _id: ObjectId (the entry's id), userId, kind, status, sessionId?, chatSessionId?, service,
//             operation, modelId, credits, reservedCredits, refund, forfeited, actualCost, inputTokens,
//             outputTokens, tokens, success, createdAt, settledAt, day: "YYYY-MM-DD" }

/// The BSON shape of an `Account` and of the `usage` document an entry is archived as.
enum StoredAccount {
    /// The accounts collection: one document per user.
    static let accounts = "accounts"
    /// The usage collection: one document per settled entry or usage record.
    static let usage = "usage"
    /// Stored as `nextDeadline` when nothing is due, so that the sweep's `$lte` never matches it.
    static let never = Date(timeIntervalSince1970: 253_402_300_799)

    /// Every field of `account` but `_id`, with `version` as given (what a compare-and-swap `$set`s).
    static func fields(_ account: Account, version: Int, now: Date) -> BSONFields {
        [
            "version": .int64(Int64(version)),
            "available": .int64(Int64(account.available)),
            "reserved": .int64(Int64(account.reserved)),
            "nextDeadline": .date(account.nextDeadline ?? never),
            "updatedAt": .date(now),
            "allocations": .array(account.allocations.map { .document(allocation($0)) }),
            "entries": .array(account.entries.map { .document(entry($0)) }),
        ]
    }

    /// The account a stored document describes.
    static func account(_ document: BSONFields) throws -> Account {
        let stored = StoredFields(document, in: accounts)
        return Account(
            userID: try stored.string("_id"),
            version: try stored.int("version"),
            allocations: try stored.documents("allocations").map(allocation),
            entries: try stored.documents("entries").map(entry)
        )
    }

    /// The `usage` document a settled entry is archived as.
    static func usageDocument(_ entry: LedgerEntry, userID: String) -> BSONFields {
        let settlement = entry.settlement
        let settledAt = settlement?.settledAt ?? entry.createdAt
        var fields: BSONFields = [
            "_id": .objectID(entry.id), "userId": .string(userID), "kind": .string(entry.kind.rawValue),
            "status": .string(entry.status.rawValue), "service": .string(entry.service), "operation": .string(entry.operation),
            "modelId": .string(entry.modelID ?? "unspecified"),
        ]
        if let sessionID = entry.sessionID { fields.append("sessionId", .string(sessionID)) }
        if let chatSessionID = entry.chatSessionID { fields.append("chatSessionId", .string(chatSessionID)) }
        if let estimatedTokens = entry.estimatedTokens { fields.append("estimatedTokens", .int64(Int64(estimatedTokens))) }
        let input = settlement?.inputTokens ?? 0
        let output = settlement?.outputTokens ?? 0
        for (key, value) in [
            ("credits", settlement?.creditsUsed ?? 0), ("reservedCredits", entry.reservedCredits), ("refund", settlement?.refund ?? 0),
            ("forfeited", settlement?.forfeited ?? 0), ("actualCost", settlement?.actualCost ?? 0), ("inputTokens", input),
            ("outputTokens", output), ("tokens", input + output),
        ] {
            fields.append(key, .int64(Int64(value)))
        }
        fields.append("success", .bool(settlement?.success ?? false))
        fields.append("createdAt", .date(entry.createdAt))
        fields.append("settledAt", .date(settledAt))
        fields.append("day", .string(day(settledAt)))
        return fields
    }

    /// The settled entry an archived `usage` document records.
    static func archivedEntry(_ document: BSONFields) throws -> LedgerEntry {
        let stored = StoredFields(document, in: usage)
        let settledAt = try stored.date("settledAt")
        return LedgerEntry(
            id: try stored.objectID("_id"),
            kind: LedgerEntry.Kind(rawValue: try stored.string("kind")) ?? .record,
            status: LedgerEntry.Status(rawValue: try stored.string("status")) ?? .finalized,
            sessionID: stored.optionalString("sessionId"), chatSessionID: stored.optionalString("chatSessionId"),
            service: try stored.string("service"), operation: try stored.string("operation"), modelID: stored.optionalString("modelId"),
            estimatedTokens: stored.optionalInt("estimatedTokens"), reservedCredits: try stored.int("reservedCredits"), held: 0, draws: [],
            createdAt: try stored.date("createdAt"), expiresAt: settledAt,
            settlement: Settlement(
                creditsUsed: try stored.int("credits"), refund: try stored.int("refund"), forfeited: try stored.int("forfeited"),
                actualCost: try stored.int("actualCost"), inputTokens: try stored.int("inputTokens"),
                outputTokens: try stored.int("outputTokens"), success: stored.optionalBool("success") ?? false, settledAt: settledAt
            )
        )
    }

    /// `date` as `YYYY-MM-DD` in UTC: the key of the usage breakdown by day.
    static func day(_ date: Date) -> String {
        let parts = utcCalendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }

    private static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        return calendar
    }()

    // MARK: Parts

    private static func allocation(_ allocation: Allocation) -> BSONFields {
        var fields: BSONFields = [
            "id": .string(allocation.id), "originalCredits": .int64(Int64(allocation.originalCredits)),
            "remaining": .int64(Int64(allocation.remaining)), "expiresAt": .date(allocation.expiresAt),
        ]
        if let notes = allocation.notes { fields.append("notes", .string(notes)) }
        fields.append("allocatedBy", .string(allocation.allocatedBy))
        fields.append("createdAt", .date(allocation.createdAt))
        return fields
    }

    private static func allocation(_ stored: StoredFields) throws -> Allocation {
        Allocation(
            id: try stored.string("id"), originalCredits: try stored.int("originalCredits"), remaining: try stored.int("remaining"),
            expiresAt: try stored.date("expiresAt"), notes: stored.optionalString("notes"), allocatedBy: try stored.string("allocatedBy"),
            createdAt: try stored.date("createdAt")
        )
    }

    private static func entry(_ entry: LedgerEntry) -> BSONFields {
        var fields: BSONFields = ["id": .string(entry.id), "kind": .string(entry.kind.rawValue), "status": .string(entry.status.rawValue)]
        if let sessionID = entry.sessionID { fields.append("sessionId", .string(sessionID)) }
        if let chatSessionID = entry.chatSessionID { fields.append("chatSessionId", .string(chatSessionID)) }
        fields.append("service", .string(entry.service))
        fields.append("operation", .string(entry.operation))
        if let modelID = entry.modelID { fields.append("modelId", .string(modelID)) }
        if let estimatedTokens = entry.estimatedTokens { fields.append("estimatedTokens", .int64(Int64(estimatedTokens))) }
        fields.append("reservedCredits", .int64(Int64(entry.reservedCredits)))
        fields.append("held", .int64(Int64(entry.held)))
        fields.append(
            "draws",
            .array(entry.draws.map { draw -> BSONValue in ["allocationId": .string(draw.allocationID), "credits": .int64(Int64(draw.credits))] })
        )
        fields.append("createdAt", .date(entry.createdAt))
        fields.append("expiresAt", .date(entry.expiresAt))
        if let settlement = entry.settlement {
            fields.append(
                "settlement",
                [
                    "creditsUsed": .int64(Int64(settlement.creditsUsed)), "refund": .int64(Int64(settlement.refund)),
                    "forfeited": .int64(Int64(settlement.forfeited)), "actualCost": .int64(Int64(settlement.actualCost)),
                    "inputTokens": .int64(Int64(settlement.inputTokens)), "outputTokens": .int64(Int64(settlement.outputTokens)),
                    "success": .bool(settlement.success), "settledAt": .date(settlement.settledAt),
                ]
            )
        }
        return fields
    }

    private static func entry(_ stored: StoredFields) throws -> LedgerEntry {
        let settlement = try stored.document("settlement").map { settled in
            Settlement(
                creditsUsed: try settled.int("creditsUsed"), refund: try settled.int("refund"), forfeited: try settled.int("forfeited"),
                actualCost: try settled.int("actualCost"), inputTokens: try settled.int("inputTokens"),
                outputTokens: try settled.int("outputTokens"), success: settled.optionalBool("success") ?? false,
                settledAt: try settled.date("settledAt")
            )
        }
        guard let kind = LedgerEntry.Kind(rawValue: try stored.string("kind")),
            let status = LedgerEntry.Status(rawValue: try stored.string("status"))
        else { throw stored.malformed("kind or status") }
        return LedgerEntry(
            id: try stored.string("id"), kind: kind, status: status, sessionID: stored.optionalString("sessionId"),
            chatSessionID: stored.optionalString("chatSessionId"), service: try stored.string("service"),
            operation: try stored.string("operation"), modelID: stored.optionalString("modelId"),
            estimatedTokens: stored.optionalInt("estimatedTokens"), reservedCredits: try stored.int("reservedCredits"),
            held: try stored.int("held"),
            draws: try stored.documents("draws").map { Draw(allocationID: try $0.string("allocationId"), credits: try $0.int("credits")) },
            createdAt: try stored.date("createdAt"), expiresAt: try stored.date("expiresAt"), settlement: settlement
        )
    }
}

/// Reads a stored document's fields; a required one missing or of the wrong type is one logged driver error.
struct StoredFields {
    private let fields: BSONFields
    private let collection: String

    /// The fields of `fields`, a document of `collection`.
    init(_ fields: BSONFields, in collection: String) {
        self.fields = fields
        self.collection = collection
    }

    func string(_ key: String) throws -> String {
        guard let value = fields[key]?.stringValue else { throw malformed(key) }
        return value
    }

    func objectID(_ key: String) throws -> String {
        guard let value = fields[key]?.objectIDValue else { throw malformed(key) }
        return value
    }

    func int(_ key: String) throws -> Int {
        guard let value = fields[key]?.intValue else { throw malformed(key) }
        return value
    }

    func date(_ key: String) throws -> Date {
        guard let value = fields[key]?.dateValue else { throw malformed(key) }
        return value
    }

    func optionalString(_ key: String) -> String? { fields[key]?.stringValue }
    func optionalInt(_ key: String) -> Int? { fields[key]?.intValue }
    func optionalBool(_ key: String) -> Bool? { fields[key]?.boolValue }

    /// The embedded document `key`, if there is one.
    func document(_ key: String) throws -> StoredFields? {
        guard let value = fields[key], value != .null else { return nil }
        guard let document = value.documentValue else { throw malformed(key) }
        return StoredFields(document, in: collection)
    }

    /// The array of documents `key` (empty when absent).
    func documents(_ key: String) throws -> [StoredFields] {
        guard let value = fields[key] else { return [] }
        guard let elements = value.arrayValue else { throw malformed(key) }
        return try elements.map { element in
            guard let document = element.documentValue else { throw malformed(key) }
            return StoredFields(document, in: collection)
        }
    }

    /// The error for a missing or mistyped field.
    func malformed(_ key: String) -> MongoDriverError {
        MongoDriverError(domain: 0, code: 0, message: "a document in \(collection) has a missing or malformed \(key)")
    }
}

/// Fresh ObjectIds, made in Swift: 4 bytes of seconds since 1970, then 8 random bytes.
enum ObjectID {
    /// A new id as 24 lowercase hex digits.
    static func make(now: Date = Date()) -> String {
        let seconds = UInt32(truncatingIfNeeded: Int(now.timeIntervalSince1970))
        var generator = SystemRandomNumberGenerator()
        let random = generator.next() as UInt64
        return String(format: "%08x", seconds) + String(format: "%016llx", random)
    }
}

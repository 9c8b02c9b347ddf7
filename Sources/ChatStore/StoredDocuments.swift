import ChatCore
import Foundation

// How sessions and messages are laid out in their collections.
//
// sessions: { _id: ObjectId, userId, title, modelId?, createdAt: Date, updatedAt: Date, messageCount, contentBytes }
// messages: { _id: ObjectId, sessionId: ObjectId, jobId, role, content, modelId?, status,
//             inputTokens?, outputTokens?, attempt? (the job attempt that produced a reply), createdAt: Date }

enum StoredSession {
    /// The collection's name.
    static let collection = "sessions"

    /// The document for a new session.
    static func document(_ session: ChatSession) -> BSONFields {
        var fields: BSONFields = [
            "_id": .objectID(session.id),
            "userId": .string(session.userId),
            "title": .string(session.title),
        ]
        if let modelId = session.modelId { fields.append("modelId", .string(modelId)) }
        if let systemPrompt = session.systemPrompt { fields.append("systemPrompt", .string(systemPrompt)) }
        fields.append("createdAt", .date(session.createdAt))
        fields.append("updatedAt", .date(session.updatedAt))
        fields.append("messageCount", .int64(Int64(session.messageCount)))
        fields.append("contentBytes", .int64(Int64(session.contentBytes)))
        return fields
    }

    /// The session a stored document describes; throws if a required field is missing.
    static func session(_ fields: BSONFields) throws -> ChatSession {
        guard let id = fields["_id"]?.objectIDValue,
            let userId = fields["userId"]?.stringValue,
            let title = fields["title"]?.stringValue,
            let createdAt = fields["createdAt"]?.dateValue,
            let updatedAt = fields["updatedAt"]?.dateValue
        else { throw malformed(StoredSession.collection) }
        return ChatSession(
            id: id, userId: userId, title: title, modelId: fields["modelId"]?.stringValue,
            createdAt: createdAt, updatedAt: updatedAt, messageCount: fields["messageCount"]?.intValue ?? 0,
            contentBytes: fields["contentBytes"]?.intValue ?? 0, systemPrompt: fields["systemPrompt"]?.stringValue
        )
    }
}

enum StoredMessage {
    /// The collection's name.
    static let collection = "messages"

    /// The document for a message to insert, with the id and time the store chose.
    static func document(_ message: NewMessage, id: String, createdAt: Date) -> BSONFields {
        var fields: BSONFields = [
            "_id": .objectID(id),
            "sessionId": .objectID(message.sessionId),
            "jobId": .string(message.jobId),
            "role": .string(message.role.rawValue),
            "content": .string(message.content),
        ]
        if let modelId = message.modelId { fields.append("modelId", .string(modelId)) }
        fields.append("status", .string(message.status.rawValue))
        if let inputTokens = message.inputTokens { fields.append("inputTokens", .int64(Int64(inputTokens))) }
        if let outputTokens = message.outputTokens { fields.append("outputTokens", .int64(Int64(outputTokens))) }
        if let attempt = message.attempt { fields.append("attempt", .int64(Int64(attempt))) }
        fields.append("createdAt", .date(createdAt))
        return fields
    }

    /// The message a stored document describes; throws if a required field is missing.
    static func message(_ fields: BSONFields) throws -> ChatMessage {
        guard let id = fields["_id"]?.objectIDValue,
            let sessionId = fields["sessionId"]?.objectIDValue,
            let jobId = fields["jobId"]?.stringValue,
            let role = fields["role"]?.stringValue.flatMap(MessageRole.init(rawValue:)),
            let content = fields["content"]?.stringValue,
            let createdAt = fields["createdAt"]?.dateValue
        else { throw malformed(StoredMessage.collection) }
        return ChatMessage(
            id: id, sessionId: sessionId, jobId: jobId, role: role, content: content,
            modelId: fields["modelId"]?.stringValue,
            status: fields["status"]?.stringValue.flatMap(MessageStatus.init(rawValue:)) ?? .complete,
            inputTokens: fields["inputTokens"]?.intValue, outputTokens: fields["outputTokens"]?.intValue,
            createdAt: createdAt
        )
    }
}

/// The current time, truncated to the millisecond as a BSON date stores it, so that what a
/// call returns equals what a later read returns.
func storedNow() -> Date {
    let milliseconds = (Date().timeIntervalSince1970 * 1000).rounded(.down)
    return Date(timeIntervalSince1970: milliseconds / 1000)
}

private func malformed(_ collection: String) -> MongoDriverError {
    MongoDriverError(domain: 0, code: 0, message: "a document in \(collection) lacks a required field")
}

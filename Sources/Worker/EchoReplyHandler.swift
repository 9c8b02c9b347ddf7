import ChatCore
import Foundation
import Logging
import Queue

/// A stand-in for the Bedrock handler: replies with the user's words echoed back, chunk by chunk, through the
/// same events and persistence a real generation uses. Kept for the job pipeline's tests.
struct EchoReplyHandler: JobHandler {
    let events: SessionEvents
    let store: any SessionStore
    let chunkDelay: Duration
    let logger: Logger

    func run(_ job: QueuedJob<InferenceJob>) async throws {
        let request = job.payload
        if job.attempt > 1 {
            try await publish(job, "reset", ["jobId": job.id, "attempt": job.attempt])
        }
        _ = try await store.appendMessage(
            NewMessage(sessionId: request.sessionId, jobId: job.id, role: .user, content: request.message, modelId: request.modelId)
        )
        try await publish(job, "model", ["jobId": job.id, "modelId": request.modelId])
        let words = Self.reply(to: request.message).split(separator: " ", omittingEmptySubsequences: false)
        var text = ""
        for (index, word) in words.enumerated() {
            try Task.checkCancellation()
            let piece = index == 0 ? String(word) : " " + word
            text += piece
            try await publish(job, "chunk", ["content": piece, "index": index])
            if chunkDelay > .zero { try await Task.sleep(for: chunkDelay) }
        }
        let inputTokens = request.message.split(separator: " ").count
        let message = try await store.appendMessage(
            NewMessage(
                sessionId: request.sessionId, jobId: job.id, role: .assistant, content: text, modelId: request.modelId,
                inputTokens: inputTokens, outputTokens: words.count
            )
        )
        try await publish(
            job, "complete",
            [
                "jobId": job.id, "messageId": message.id, "content": text, "stopReason": "end_turn",
                "inputTokens": inputTokens, "outputTokens": words.count,
            ]
        )
    }

    func abandon(_ job: QueuedJob<InferenceJob>, reason: String) async {
        do {
            try await publish(job, "error", ["jobId": job.id, "code": "JOB_FAILED", "message": "The reply could not be generated"])
        } catch {
            logger.error("could not publish the failure of a job", metadata: ["job": "\(job.id)", "error": "\(error)"])
        }
    }

    /// The placeholder reply: the message's words, prefixed.
    static func reply(to message: String) -> String {
        "Echo: " + message
    }

    private func publish(_ job: QueuedJob<InferenceJob>, _ type: String, _ body: [String: Any]) async throws {
        let data = String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self)
        try await events.append(sessionID: job.payload.sessionId, jobID: job.id, type: type, data: data)
    }
}

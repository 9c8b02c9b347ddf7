/// Runs the jobs of one queue; the worker process supplies the real one, tests supply their own.
public protocol JobHandler<Payload>: Sendable {
    /// The job payload this handler understands.
    associatedtype Payload: Codable & Sendable

    /// Runs a job to its end. Returning acknowledges it. Throwing `JobFailure.permanent` dead-letters it at
    /// once; any other error leaves it pending, to run again after the visibility timeout while attempts
    /// remain. Cancellation means the worker lost the job (or is draining): stop without side effects to undo.
    func run(_ job: QueuedJob<Payload>) async throws

    /// The job will never run again (its last attempt failed or its worker died too often): tell its
    /// clients and settle what it reserved. Called once per dead-lettered job.
    func abandon(_ job: QueuedJob<Payload>, reason: String) async
}

/// An error a handler throws to say a job cannot succeed however often it is retried.
public struct JobFailure: Error, Sendable, CustomStringConvertible {
    /// Why the job failed, as stored with the dead letter.
    public var reason: String

    /// A failure that retrying cannot fix.
    public static func permanent(_ reason: String) -> JobFailure {
        JobFailure(reason: reason)
    }

    public var description: String { reason }
}

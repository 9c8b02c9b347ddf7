import NIOCore

/// A command on its way to the socket: its RESP bytes, who receives its reply, and its deadline.
struct RedisRequest: Sendable {
    var bytes: ByteBuffer
    var responder: RedisResponder
    var deadline: NIODeadline
}

/// Who receives a reply. Completed exactly once, always on the connection's event loop, by the handler.
enum RedisResponder: Sendable {
    /// One awaiting task, resumed directly (no future, no extra hop).
    case continuation(CheckedContinuation<RedisValue, any Error>)
    /// One slot of a pipelined batch.
    case batch(RedisBatch, Int)
    /// A promise, for a sender that goes on without waiting.
    case promise(EventLoopPromise<RedisValue>)

    func succeed(_ value: RedisValue) {
        switch self {
        case .continuation(let continuation): continuation.resume(returning: value)
        case .batch(let batch, let index): batch.complete(index, value)
        case .promise(let promise): promise.succeed(value)
        }
    }

    func fail(_ error: any Error) {
        switch self {
        case .continuation(let continuation): continuation.resume(throwing: error)
        case .batch(let batch, _): batch.fail(error)
        case .promise(let promise): promise.fail(error)
        }
    }
}

/// The replies of a pipelined batch, handed to the awaiting task in one resume when the last one arrives.
///
/// `@unchecked Sendable`: created off the loop but, once its requests are written, touched only on the
/// connection's event loop (by the handler), one reply at a time.
final class RedisBatch: @unchecked Sendable {
    private var values: [RedisValue]
    private var remaining: Int
    private var continuation: CheckedContinuation<[RedisValue], any Error>?

    init(count: Int, continuation: CheckedContinuation<[RedisValue], any Error>) {
        values = Array(repeating: .null, count: count)
        remaining = count
        self.continuation = continuation
        if count == 0 { finish() }
    }

    func complete(_ index: Int, _ value: RedisValue) {
        values[index] = value
        remaining -= 1
        if remaining == 0 { finish() }
    }

    /// The first failure fails the whole batch; later replies and failures of it are ignored.
    func fail(_ error: any Error) {
        continuation?.resume(throwing: error)
        continuation = nil
    }

    private func finish() {
        continuation?.resume(returning: values)
        continuation = nil
    }
}

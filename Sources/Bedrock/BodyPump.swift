import AsyncHTTPClient
import NIOConcurrencyHelpers
import NIOCore

/// Reads a response body in a task of its own, at most one buffer ahead of the consumer (so backpressure
/// still reaches the socket), and hands buffers to `next(timeout:)`. The timeout is a timer on an event loop
/// rather than a racing task, which keeps the cost per chunk to two lock turns and a timer.
///
/// `@unchecked Sendable`: every mutable field is guarded by `lock`; each continuation is resumed exactly once,
/// by whoever removes it from its field under the lock.
final class BodyPump: @unchecked Sendable {
    private let lock = NIOLock()
    private var ahead: Result<ByteBuffer?, any Error>?
    private var consumer: CheckedContinuation<ByteBuffer?, any Error>?
    private var producer: CheckedContinuation<Void, Never>?
    private var timer: Scheduled<Void>?
    private var closed: (any Error)?
    private var reader: Task<Void, Never>?
    private let eventLoop: any EventLoop
    private let timeoutError: @Sendable () -> any Error

    init(body: HTTPClientResponse.Body, eventLoop: any EventLoop, timeoutError: @escaping @Sendable () -> any Error) {
        self.eventLoop = eventLoop
        self.timeoutError = timeoutError
        let task = Task { [weak self] in
            var iterator = body.makeAsyncIterator()
            while !Task.isCancelled {
                let result: Result<ByteBuffer?, any Error>
                do {
                    result = .success(try await iterator.next())
                } catch {
                    result = .failure(error)
                }
                guard let self else { return }
                await self.hand(result)
                if case .success(.some) = result { continue }
                return
            }
        }
        lock.withLock { reader = task }
    }

    /// The next buffer (nil at the end); throws the body's error, `timeoutError()` when none comes within
    /// `timeout`, or `CancellationError` when the calling task is cancelled.
    func next(timeout: TimeAmount) async throws -> ByteBuffer? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ByteBuffer?, any Error>) in
                lock.withLock {
                    if let error = closed {
                        continuation.resume(throwing: error)
                    } else if let result = ahead {
                        ahead = nil
                        producer?.resume()
                        producer = nil
                        continuation.resume(with: result)
                    } else {
                        consumer = continuation
                        timer = eventLoop.scheduleTask(in: timeout) { [weak self] in self?.close(with: self?.timeoutError() ?? CancellationError()) }
                    }
                }
            }
        } onCancel: {
            close(with: CancellationError())
        }
    }

    /// Stops reading (the request is cancelled) and fails a waiting consumer with `error`.
    func close(with error: any Error) {
        let task: Task<Void, Never>? = lock.withLock {
            if closed == nil { closed = error }
            consumer?.resume(throwing: error)
            consumer = nil
            producer?.resume()
            producer = nil
            timer?.cancel()
            timer = nil
            return reader
        }
        task?.cancel()
    }

    deinit {
        reader?.cancel()
    }

    /// Gives a read result to a waiting consumer, or keeps it and waits until the consumer takes it.
    private func hand(_ result: Result<ByteBuffer?, any Error>) async {
        await withCheckedContinuation { (waiting: CheckedContinuation<Void, Never>) in
            lock.withLock {
                if closed != nil {
                    waiting.resume()
                } else if let consumer {
                    self.consumer = nil
                    timer?.cancel()
                    timer = nil
                    consumer.resume(with: result)
                    waiting.resume()
                } else {
                    ahead = result
                    producer = waiting
                }
            }
        }
    }
}

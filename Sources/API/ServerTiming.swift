import HTTPTypes
import NIOConcurrencyHelpers

/// Where a request's time went inside chat-api, sent back as `Server-Timing` (`name;dur=<ms>`): the steps
/// before a generation is queued (auth, rate limit, stream slot, session check, credit reservation, enqueue), and
/// `server`, all of chat-api's time until the response head (on a stream).
final class ServerTiming: Sendable {
    private let spans = NIOLockedValueBox<[(String, Duration)]>([])

    /// Records the span `name` that began at `start` and ends now (added to an earlier span of that name).
    func record(_ name: String, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        spans.withLockedValue { spans in
            if let index = spans.firstIndex(where: { $0.0 == name }) {
                spans[index].1 += elapsed
            } else {
                spans.append((name, elapsed))
            }
        }
    }

    /// The `Server-Timing` header's value; nil when nothing was recorded.
    var headerValue: String? {
        let recorded = spans.withLockedValue { $0 }
        guard !recorded.isEmpty else { return nil }
        return recorded.map { name, duration in
            let (seconds, attoseconds) = duration.components
            let microseconds = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
            return "\(name);dur=\(microseconds / 1000).\(Self.threeDigits(microseconds % 1000))"
        }.joined(separator: ", ")
    }

    private static func threeDigits(_ value: Int64) -> String {
        value < 10 ? "00\(value)" : value < 100 ? "0\(value)" : "\(value)"
    }

    /// Adds the header to `fields` when anything was recorded.
    func apply(to fields: inout HTTPFields) {
        if let headerValue { fields[.serverTiming] = headerValue }
    }
}

extension HTTPField.Name {
    static let serverTiming = Self("Server-Timing")!
}

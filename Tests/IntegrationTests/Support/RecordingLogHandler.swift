import Logging
import Synchronization

/// Log lines kept in memory, for tests that check what a component logged.
final class LogRecord: Sendable {
    private let lines = Mutex<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])

    /// A logger whose lines land here.
    func logger(_ label: String = "test") -> Logger {
        Logger(label: label) { _ in RecordingLogHandler(record: self) }
    }

    /// Adds one line.
    func append(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata) {
        lines.withLock { $0.append((level, message, metadata)) }
    }

    /// The lines whose message contains `text`.
    func lines(containing text: String) -> [(level: Logger.Level, message: String, metadata: Logger.Metadata)] {
        lines.withLock { $0.filter { $0.message.contains(text) } }
    }
}

/// A log handler that writes into a `LogRecord`.
struct RecordingLogHandler: LogHandler {
    let record: LogRecord
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        record.append(event.level, event.message.description, metadata.merging(event.metadata ?? [:]) { $1 })
    }
}

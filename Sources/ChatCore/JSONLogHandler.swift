import Foundation
import Logging

/// Logs one JSON object per line on standard error, for log pipelines (Loki, CloudWatch, Elasticsearch):
/// `time` (UTC, milliseconds), `level`, `service` (the process), `logger` (its label), `message`, then every
/// metadata value under its own key (`requestId`, `jobId`, `sessionId`, `userId`, `traceId`, ...; nested
/// values as JSON). Lines are written whole, one at a time (a lock around the `write` calls), so lines of
/// concurrent tasks never interleave, however long.
public struct JSONLogHandler: LogHandler {
    /// The process's name, in every line's `service`.
    public let service: String
    /// The logger's label, in every line's `logger`.
    public let label: String
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?

    /// A handler for the logger `label` of process `service`.
    public init(service: String, label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.service = service
        self.label = label
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        if let error = event.error, merged["error"] == nil { merged["error"] = .string("\(error)") }
        Self.write(Self.line(time: Date(), level: event.level, service: service, logger: label, message: event.message.description, metadata: merged))
    }

    /// The JSON text of one line, without its newline.
    static func line(time: Date, level: Logger.Level, service: String, logger: String, message: String, metadata: Logger.Metadata) -> String {
        var json = #"{"time":""#
        json += timestamp(time)
        json += #"","level":""# + level.rawValue
        json += #"","service":""#
        JSONText.appendEscaped(service, to: &json)
        json += #"","logger":""#
        JSONText.appendEscaped(logger, to: &json)
        json += #"","message":""#
        JSONText.appendEscaped(message, to: &json)
        json += "\""
        for key in metadata.keys.sorted() where !["time", "level", "service", "logger", "message"].contains(key) {
            json += ",\""
            JSONText.appendEscaped(key, to: &json)
            json += "\":"
            append(metadata[key]!, to: &json)
        }
        json += "}"
        return json
    }

    private static func append(_ value: Logger.Metadata.Value, to json: inout String) {
        switch value {
        case .string(let text):
            json += "\""
            JSONText.appendEscaped(text, to: &json)
            json += "\""
        case .stringConvertible(let convertible):
            json += "\""
            JSONText.appendEscaped(convertible.description, to: &json)
            json += "\""
        case .array(let values):
            json += "["
            for (index, element) in values.enumerated() {
                if index > 0 { json += "," }
                append(element, to: &json)
            }
            json += "]"
        case .dictionary(let members):
            json += "{"
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { json += "," }
                json += "\""
                JSONText.appendEscaped(key, to: &json)
                json += "\":"
                append(members[key]!, to: &json)
            }
            json += "}"
        }
    }

    /// `2026-11-29T23:27:41.123Z`.
    static func timestamp(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let fraction = Int(milliseconds % 1000)
        let millis = fraction < 10 ? "00\(fraction)" : fraction < 100 ? "0\(fraction)" : "\(fraction)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(millis)Z"
    }

    private static let writing = NSLock()

    private static func write(_ line: String) {
        var text = line
        text += "\n"
        writing.lock()
        defer { writing.unlock() }
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}

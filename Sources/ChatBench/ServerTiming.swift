import Foundation

/// The server's own account of where a request's time went: the `Server-Timing` response header
/// (`auth;dur=0.4, ratelimit;dur=0.1, ...`) and the `spans` object of the `complete` event
/// (`{"pickup": 1.2, "prepare": 3.4, "firstByte": 20.1, "publish": 0.3}`), both in milliseconds.
/// Tolerant: anything it does not understand is skipped, never an error.
enum ServerTiming {
    /// The spans chat-api names in its `Server-Timing` header, in the order they happen.
    static let headerSpans = ["auth", "ratelimit", "session", "reserve", "enqueue", "server"]
    /// The spans of the `complete` event, in the order they happen.
    static let eventSpans = ["pickup", "prepare", "firstByte", "publish"]

    /// Each `name;dur=<ms>` entry of a `Server-Timing` header value (several headers may be joined by commas).
    static func parseHeader(_ value: String) -> [String: Double] {
        var timings: [String: Double] = [:]
        for entry in value.split(separator: ",") {
            let parameters = entry.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let name = parameters.first, !name.isEmpty else { continue }
            for parameter in parameters.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard pair.count == 2, pair[0].lowercased() == "dur" else { continue }
                let number = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                if let milliseconds = Double(number), milliseconds.isFinite { timings[name, default: 0] += milliseconds }
            }
        }
        return timings
    }

    /// The numeric entries of the `spans` object in a `complete` event's JSON data, if it has one.
    static func parseSpans(eventData: String) -> [String: Double] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(eventData.utf8)) as? [String: Any],
            let spans = object["spans"] as? [String: Any]
        else { return [:] }
        var result: [String: Double] = [:]
        for (name, value) in spans {
            if let number = value as? Double, number.isFinite {
                result[name] = number
            } else if let number = value as? Int {
                result[name] = Double(number)
            } else if let text = value as? String, let number = Double(text), number.isFinite {
                result[name] = number
            }
        }
        return result
    }
}

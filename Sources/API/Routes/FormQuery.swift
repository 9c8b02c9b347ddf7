import Foundation
import Hummingbird

/// A query string read as browsers write it (`application/x-www-form-urlencoded`: `URLSearchParams`, GET forms):
/// `+` is a space and `%XX` a byte, so `message=Tell+me` is "Tell me". (Hummingbird's `queryParameters` keeps
/// the `+`.)
enum FormQuery {
    /// The first value of `name` in `request`'s query, decoded; nil when absent or not valid percent-encoding.
    static func value(_ request: Request, _ name: String) -> String? {
        guard let query = request.uri.query else { return nil }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard decode(parts[0]) == name else { continue }
            return parts.count > 1 ? decode(parts[1]) : ""
        }
        return nil
    }

    static func decode(_ text: Substring) -> String? {
        String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}

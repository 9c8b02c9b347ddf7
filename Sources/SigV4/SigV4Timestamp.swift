import Foundation

/// A signing time in whole UTC seconds, in SigV4's `YYYYMMDDTHHMMSSZ` form and as a `Date`.
package struct SigV4Timestamp: Sendable, Equatable {
    /// The instant, truncated to whole seconds.
    package let date: Date
    /// The ISO 8601 basic form used by `X-Amz-Date`, e.g. `20150830T123600Z`.
    package let amzDate: String

    /// The `YYYYMMDD` day that starts the credential scope.
    package var dateStamp: String { String(amzDate.prefix(8)) }

    private static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        return calendar
    }()

    /// The timestamp of an instant; fractions of a second are dropped.
    package init(_ date: Date) {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        self.date = Date(timeIntervalSince1970: seconds)
        let parts = Self.utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: self.date)
        amzDate = Self.digits(parts.year ?? 0, 4) + Self.digits(parts.month ?? 0, 2) + Self.digits(parts.day ?? 0, 2)
            + "T" + Self.digits(parts.hour ?? 0, 2) + Self.digits(parts.minute ?? 0, 2) + Self.digits(parts.second ?? 0, 2) + "Z"
    }

    /// The timestamp an `X-Amz-Date` value names, or `nil` unless it is exactly `YYYYMMDDTHHMMSSZ` and a real time.
    package init?(amzDate text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8),
              let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15) else { return nil }
        let parts = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        guard let date = Self.utc.date(from: parts) else { return nil }
        self.init(date)
        // The calendar quietly rolls over out-of-range fields (month 13, hour 25): refuse those.
        guard amzDate == text else { return nil }
    }

    private static func digits(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}

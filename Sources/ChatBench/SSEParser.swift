/// One Server-Sent Event: its `event:` name (`message` when absent) and its `data:` lines joined by newlines.
struct SSEEvent: Sendable, Equatable {
    var name: String
    var data: String
}

/// An incremental Server-Sent Events parser: feed it the body's bytes as they come, in pieces of any size,
/// and it hands back each event whose blank line has arrived. Comments (`: heartbeat`) and `id:` are skipped.
struct SSEParser: Sendable {
    private var line: [UInt8] = []
    private var name: String?
    private var data: [String] = []
    private var hasData = false

    /// The events completed by `bytes`.
    mutating func feed(_ bytes: some Sequence<UInt8>) -> [SSEEvent] {
        var events: [SSEEvent] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                if let event = take(line: String(decoding: line, as: UTF8.self)) { events.append(event) }
                line.removeAll(keepingCapacity: true)
            } else {
                line.append(byte)
            }
        }
        return events
    }

    private mutating func take(line: String) -> SSEEvent? {
        if line.isEmpty {
            defer { name = nil; data = []; hasData = false }
            guard hasData || name != nil else { return nil }
            return SSEEvent(name: name ?? "message", data: data.joined(separator: "\n"))
        }
        if line.hasPrefix(":") { return nil }
        let field: Substring
        var value: Substring
        if let colon = line.firstIndex(of: ":") {
            field = line[..<colon]
            value = line[line.index(after: colon)...]
            if value.hasPrefix(" ") { value = value.dropFirst() }
        } else {
            field = Substring(line)
            value = ""
        }
        switch field {
        case "event": name = String(value)
        case "data":
            data.append(String(value))
            hasData = true
        default: break
        }
        return nil
    }
}

import NIOCore

/// One named header of an event-stream message.
public struct EventStreamHeader: Sendable, Hashable {
    /// The header name, at most 255 UTF-8 bytes.
    public var name: String
    /// The typed header value.
    public var value: EventStreamHeaderValue

    /// A header named `name` holding `value`.
    public init(name: String, value: EventStreamHeaderValue) {
        self.name = name
        self.value = value
    }
}

/// One event-stream message: ordered, uniquely named headers and an opaque payload.
public struct EventStreamMessage: Sendable, Equatable {
    /// The headers in wire order.
    public var headers: [EventStreamHeader]
    /// The payload bytes (the readable bytes of the buffer).
    public var payload: ByteBuffer

    /// A message with `headers` in this order and `payload`.
    public init(headers: [EventStreamHeader] = [], payload: ByteBuffer = ByteBuffer()) {
        self.headers = headers
        self.payload = payload
    }

    /// A message whose headers are given as name-value pairs, in this order.
    public init(headers: KeyValuePairs<String, EventStreamHeaderValue>, payload: ByteBuffer = ByteBuffer()) {
        self.init(headers: headers.map { EventStreamHeader(name: $0.key, value: $0.value) }, payload: payload)
    }

    /// The value of the header named `name`, or nil if there is none.
    public subscript(header name: String) -> EventStreamHeaderValue? {
        for header in headers where header.name == name {
            return header.value
        }
        return nil
    }

    /// The text of the string header named `name`; nil if it is absent or not a string.
    public func stringHeader(_ name: String) -> String? {
        if case .string(let text) = self[header: name] {
            return text
        }
        return nil
    }
}

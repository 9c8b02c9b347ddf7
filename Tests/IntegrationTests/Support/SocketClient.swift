import Foundation
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import NIOCore
import WSClient

/// One message of chat-api's event sockets: `{"id", "event", "data"}`.
struct SocketMessage: Sendable {
    var id: String?
    var event: String
    /// `data` as JSON text (re-encoded with sorted keys, so two messages compare as text).
    var data: String

    var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any]) ?? [:] }

    init?(_ text: String) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any], let event = object["event"] as? String,
            let data = object["data"], let encoded = try? JSONSerialization.data(withJSONObject: data, options: [.sortedKeys])
        else { return nil }
        self.id = object["id"] as? String
        self.event = event
        self.data = String(decoding: encoded, as: UTF8.self)
    }
}

/// A WebSocket client that records what it receives while the test goes on, for tests.
final class SocketRecorder: Sendable {
    private let received = NIOLockedValueBox<[SocketMessage]>([])
    /// Messages that were not one JSON event each (a test expects none).
    private let malformed = NIOLockedValueBox<[String]>([])
    private let closing: Task<WebSocketCloseFrame?, any Error>

    /// Connects to `url` (`ws://…`) with `headers` and records every message until the server closes.
    init(_ url: String, headers: HTTPFields = [:]) {
        let received = self.received
        let malformed = self.malformed
        closing = Task {
            do {
                return try await WebSocketClient.connect(
                url: url, configuration: WebSocketClientConfiguration(additionalHeaders: headers), logger: Logger(label: "test.socket")
            ) { inbound, _, _ in
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    if let parsed = SocketMessage(text) {
                        received.withLockedValue { $0.append(parsed) }
                    } else {
                        malformed.withLockedValue { $0.append(text) }
                    }
                }
            }
            } catch {
                malformed.withLockedValue { $0.append("connection failed: \(error)") }
                throw error
            }
        }
    }

    /// Everything received so far.
    var messages: [SocketMessage] { received.withLockedValue { $0 } }
    var unparsed: [String] { malformed.withLockedValue { $0 } }

    /// The server's close frame, once the socket closed (nil when it closed without one).
    func closed() async throws -> WebSocketCloseFrame? {
        try await withTaskCancellationHandler { try await closing.value } onCancel: { closing.cancel() }
    }

    func cancel() { closing.cancel() }
}

/// A WebSocket handshake and what follows it, over a bare socket: for answers that come at once, in the same
/// packets as the handshake's (the WSClient drops a long frame that arrives with the `101`).
enum SocketUpgrade {
    /// What the server sent for a handshake for `path` on 127.0.0.1:`port` with `headers`, until it closed the
    /// connection (or 5 s passed): the status, the text messages, and the close frame's code.
    static func exchange(port: Int, _ path: String, headers: [String: String] = [:]) async throws -> (status: Int, messages: [SocketMessage], close: UInt16?) {
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        request += "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        let answer = try await RawConnection.exchange(port: port, bytes: request + "\r\n", limit: .seconds(5))
        guard let end = answer.indices.first(where: { answer[$0...].starts(with: Array("\r\n\r\n".utf8)) }) else { return (0, [], nil) }
        let statusLine = String(decoding: answer[..<end], as: UTF8.self).split(separator: " ", maxSplits: 2)
        let status = statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0
        // Server frames are unmasked: opcode, a 7-bit length (126: 16 bits follow; 127: 64 bits), the payload.
        var messages: [SocketMessage] = []
        var close: UInt16?
        var at = end + 4
        while at + 2 <= answer.count {
            let opcode = answer[at] & 0x0F
            var length = Int(answer[at + 1] & 0x7F)
            at += 2
            if length == 126, at + 2 <= answer.count {
                length = Int(answer[at]) << 8 | Int(answer[at + 1])
                at += 2
            } else if length == 127, at + 8 <= answer.count {
                length = answer[at..<(at + 8)].reduce(0) { $0 << 8 | Int($1) }
                at += 8
            }
            guard at + length <= answer.count else { break }
            let payload = answer[at..<(at + length)]
            at += length
            if opcode == 1, let message = SocketMessage(String(decoding: payload, as: UTF8.self)) { messages.append(message) }
            if opcode == 8, payload.count >= 2 { close = UInt16(payload[payload.startIndex]) << 8 | UInt16(payload[payload.startIndex + 1]) }
        }
        return (status, messages, close)
    }

    /// The status of the answer to a handshake for `path`.
    static func refusal(port: Int, _ path: String, headers: [String: String] = [:]) async throws -> Int {
        try await exchange(port: port, path, headers: headers).status
    }
}

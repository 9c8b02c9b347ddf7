import Foundation

/// A bare TCP client, for what an HTTP client library will not do (send half a request and wait).
enum RawConnection {
    /// Connects to 127.0.0.1:`port`, sends `bytes`, and waits up to `limit` for the server to close the
    /// connection; true when it did.
    static func sendAndAwaitClose(port: Int, bytes: String, limit: Duration) async throws -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return false }
        _ = bytes.withCString { send(fd, $0, strlen($0), 0) }
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        var buffer = [UInt8](repeating: 0, count: 4096)
        while clock.now < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 0) > 0 {
                let read = recv(fd, &buffer, buffer.count, 0)
                if read <= 0 { return true }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Connects to 127.0.0.1:`port`, sends `bytes`, and returns what the server sent back until it closed the
    /// connection or `limit` passed.
    static func exchange(port: Int, bytes: String, limit: Duration) async throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return [] }
        _ = bytes.withCString { send(fd, $0, strlen($0), 0) }
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while clock.now < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 0) > 0 {
                let read = recv(fd, &buffer, buffer.count, 0)
                if read <= 0 { break }
                received += buffer[0..<read]
                continue
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return received
    }

    /// A reader that stops reading: connects to 127.0.0.1:`port` with a small receive buffer and sends `bytes`.
    /// `drain(limit:)` then reads everything until the server closes the connection (or `limit` passes).
    final class StalledReader: @unchecked Sendable {
        // @unchecked: used by one test, one call at a time.
        let fd: Int32

        init(port: Int, bytes: String) {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var size: Int32 = 4096
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            _ = bytes.withCString { send(fd, $0, strlen($0), 0) }
        }

        deinit { close(fd) }

        /// Reads until the server closed the connection; the bytes read and whether it was closed within `limit`.
        func drain(limit: Duration) async throws -> (bytes: Int, closed: Bool) {
            let clock = ContinuousClock()
            let deadline = clock.now + limit
            var total = 0
            var buffer = [UInt8](repeating: 0, count: 65536)
            while clock.now < deadline {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&poller, 1, 0) > 0 {
                    let read = recv(fd, &buffer, buffer.count, 0)
                    if read <= 0 { return (total, true) }
                    total += read
                    continue
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            return (total, false)
        }
    }
}

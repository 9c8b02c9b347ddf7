import Foundation

/// A bare TCP client, for what an HTTP client library will not do (send half a request and wait).
enum RawConnection {
    /// Connects to 127.0.0.1:`port`, sends `bytes`, and waits up to `limit` for the server to close the
    /// connection; true when it did.
    static func sendAndAwaitClose(port: Int, bytes: String, limit: Duration) async throws -> Bool {
        let fd = connect(port: port)
        defer { close(fd) }
        guard fd >= 0 else { return false }
        _ = bytes.withCString { send(fd, $0, strlen($0), 0) }
        return try await read(fd, limit: limit).closed
    }

    /// Connects to 127.0.0.1:`port`, sends `bytes`, and returns what the server sent back until it closed the
    /// connection or `limit` passed.
    static func exchange(port: Int, bytes: String, limit: Duration) async throws -> [UInt8] {
        let fd = connect(port: port)
        defer { close(fd) }
        guard fd >= 0 else { return [] }
        _ = bytes.withCString { send(fd, $0, strlen($0), 0) }
        return try await read(fd, limit: limit).bytes
    }

    /// A socket connected to 127.0.0.1:`port` (with a receive buffer of `receiveBuffer` bytes, if given), or -1.
    static func connect(port: Int, receiveBuffer: Int32? = nil) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    /// What the server sends on `fd` until it closes the connection or `limit` passes, and whether it closed it.
    static func read(_ fd: Int32, limit: Duration) async throws -> (bytes: [UInt8], closed: Bool) {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while clock.now < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 0) > 0 {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count <= 0 { return (received, true) }
                received += buffer[0..<count]
                continue
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return (received, false)
    }

    /// A reader that stops reading: connects to 127.0.0.1:`port` with a small receive buffer and sends `bytes`.
    /// `drain(limit:)` then reads everything until the server closes the connection (or `limit` passes).
    final class StalledReader: @unchecked Sendable {
        // @unchecked: used by one test, one call at a time.
        let fd: Int32

        init(port: Int, bytes: String) {
            fd = RawConnection.connect(port: port, receiveBuffer: 4096)
            _ = bytes.withCString { send(fd, $0, strlen($0), 0) }
        }

        deinit { close(fd) }

        /// Reads until the server closed the connection; the bytes read and whether it was closed within `limit`.
        func drain(limit: Duration) async throws -> (bytes: Int, closed: Bool) {
            let (bytes, closed) = try await RawConnection.read(fd, limit: limit)
            return (bytes.count, closed)
        }
    }
}

import ChatCore
import Foundation

/// A server process (redis-server or SecantusDB) that a test starts, kills and restarts itself,
/// on a port of its own, so that failure tests never disturb the servers `make test` shares.
final class ManagedServer: @unchecked Sendable {
    // @unchecked: `process` is only touched from the test that owns the server, one call at a time.
    let port: Int
    private let executable: String
    private let arguments: [String]
    private var process: Process?
    private let dataDirectory: URL?

    private init(port: Int, executable: String, arguments: [String], dataDirectory: URL?) {
        self.port = port
        self.executable = executable
        self.arguments = arguments
        self.dataDirectory = dataDirectory
    }

    /// A redis-server with no persistence on `port`, started and answering.
    static func redis(port: Int, extraArguments: [String] = []) async throws -> ManagedServer {
        let binary = ProcessInfo.processInfo.environment["REDIS_SERVER_BIN"] ?? "redis-server"
        let server = ManagedServer(
            port: port, executable: binary,
            arguments: ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"] + extraArguments,
            dataDirectory: nil
        )
        try await server.start()
        return server
    }

    /// A SecantusDB (MongoDB wire protocol) server on `port` with a fresh data folder, started and answering.
    static func secantus(port: Int) async throws -> ManagedServer {
        let binary = ProcessInfo.processInfo.environment["SECANTUSD_BIN"] ?? ".venv/bin/secantusd-py"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("secantus-test-\(port)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let server = ManagedServer(
            port: port, executable: binary,
            arguments: ["--host", "127.0.0.1", "--port", "\(port)", "--storage-path", directory.path, "--cache-size", "64M", "--standalone"],
            dataDirectory: directory
        )
        try await server.start()
        return server
    }

    /// Starts the process and waits until its port accepts connections (at most 20 s).
    func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") || executable.hasPrefix(".") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") || executable.hasPrefix(".") ? arguments : [executable] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if Self.portIsOpen(port) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ManagedServerError(message: "\(executable) did not open port \(port) within 20 s")
    }

    /// Kills the process at once (SIGKILL) and waits for it to be gone.
    func kill() async {
        guard let process else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
        // Give the kernel a moment to release the listening socket.
        try? await Task.sleep(for: .milliseconds(100))
    }

    /// Stops the server for good and removes its data folder.
    func shutdown() async {
        await kill()
        if let dataDirectory { try? FileManager.default.removeItem(at: dataDirectory) }
    }

    private static func portIsOpen(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

/// A managed server failed to start.
struct ManagedServerError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Settings the integration tests read from the environment (`make test` sets them).
enum TestEnvironment {
    /// The Redis that `make test` started.
    static var redisURL: String { ProcessInfo.processInfo.environment["REDIS_URL"] ?? "redis://127.0.0.1:6390" }
    /// The MongoDB (SecantusDB) that `make test` started; each test uses a database of its own.
    static var mongoURI: String { ProcessInfo.processInfo.environment["MONGO_URI"] ?? "mongodb://127.0.0.1:27028/chat_test" }

    /// The accounting stand-in that `make test` started.
    static var accountingURL: String { ProcessInfo.processInfo.environment["ACCOUNTING_URL"] ?? "http://127.0.0.1:3022" }
    /// The credential the accounting stand-in of `make test` requires for reservations and settlements.
    static var serviceCredential: ServiceCredential? { try? ServiceCredential.from(Environment()) }
    /// The auth stand-in that `make test` started.
    static var authURL: String { ProcessInfo.processInfo.environment["AUTH_URL"] ?? "http://127.0.0.1:3021" }

    /// A port for a server a test starts itself, distinct per call within a run.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: bound.sin_port))
    }
}

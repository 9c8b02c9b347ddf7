import ChatCore
import Foundation
import NIOPosix
import Testing

@testable import Queue

/// A client of the Redis that `make test` started, with keys under a prefix of the test's own.
func testRedisClient(commandTimeout: Duration = .seconds(5)) throws -> RedisClient {
    var configuration = try RedisConfiguration(url: TestEnvironment.redisURL)
    configuration.commandTimeout = commandTimeout
    return RedisClient(configuration: configuration)
}

/// A key no other test uses.
func uniqueKey(_ name: String) -> String {
    "test:\(name):\(UUID().uuidString)"
}

@Suite("Redis client against redis-server")
struct RedisClientTests {
    @Test("typed key-value and hash commands")
    func keyValueCommands() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let key = uniqueKey("kv")
        #expect(try await redis.ping() == "PONG")
        #expect(try await redis.get(key) == nil)
        #expect(try await redis.set(key, "v1", onlyIfAbsent: true, expiry: .seconds(30)))
        #expect(try await redis.set(key, "v2", onlyIfAbsent: true) == false)
        #expect(try await redis.get(key) == "v1")
        #expect(try await redis.send("PTTL", key).int.map { $0 > 0 && $0 <= 30_000 } == true)
        #expect(try await redis.expire(key, after: .seconds(60)))
        #expect(try await redis.delete(key) == 1)
        let hash = uniqueKey("hash")
        #expect(try await redis.hset(hash, [("status", "running"), ("attempt", "1")]) == 2)
        #expect(try await redis.hgetall(hash) == ["status": "running", "attempt": "1"])
        #expect(try await redis.hgetall(uniqueKey("missing")) == [:])
        try await redis.delete(hash)
    }

    @Test("typed stream commands: XADD with MAXLEN ~, XRANGE, XCLAIM, XPENDING, XDEL, XTRIM")
    func streamCommands() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let stream = uniqueKey("typed-stream")
        #expect(try await redis.xgroupCreate(stream, group: "g"))
        #expect(try await redis.xgroupCreate(stream, group: "g") == false)  // BUSYGROUP is "already there"
        var ids: [String] = []
        for index in 0..<10 { ids.append(try await redis.xadd(stream, maxLength: 1_000, fields: [("i", String(index))])) }
        #expect(try await redis.xrange(stream, count: 3).map(\.fields) == [["i": "0"], ["i": "1"], ["i": "2"]])
        #expect(try await redis.xread(stream, after: ids[7]).map(\.id) == Array(ids[8...]))
        let delivered = try await redis.xreadgroup(group: "g", consumer: "a", key: stream, count: 2)
        #expect(delivered.map(\.id) == Array(ids[0..<2]))
        #expect(try await redis.xclaim(stream, group: "g", consumer: "b", minIdle: .zero, ids: [ids[0]], justID: true) == [ids[0]])
        let pending = try await redis.xpending(stream, group: "g")
        #expect(pending.map(\.consumer) == ["b", "a"])
        #expect(pending.map(\.deliveries) == [1, 1])  // JUSTID leaves the delivery count alone
        #expect(try await redis.xack(stream, group: "g", ids: [ids[0], ids[1]]) == 2)
        #expect(try await redis.xpendingCount(stream, group: "g") == 0)
        #expect(try await redis.xdel(stream, ids: [ids[9]]) == 1)
        #expect(try await redis.xtrim(stream, maxLength: 4, exact: true) == 5)
        #expect(try await redis.xlen(stream) == 4)
        try await redis.delete(stream)
    }

    @Test("error replies are thrown as RedisServerError with their prefix")
    func errorReplies() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let key = uniqueKey("wrongtype")
        try await redis.set(key, "x")
        await #expect {
            try await redis.send("HGETALL", key)
        } throws: { error in
            (error as? RedisServerError)?.prefix == "WRONGTYPE"
        }
        // The connection keeps working after an error reply.
        #expect(try await redis.get(key) == "x")
        try await redis.delete(key)
    }

    @Test("10,000 pipelined commands on one connection come back in order, each correct")
    func pipelining() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let key = uniqueKey("counter")
        let commands = (0..<10_000).map { _ in RedisCommand("INCR", key) }
        let replies = try await redis.pipeline(commands)
        #expect(replies.count == 10_000)
        #expect(replies == (1...10_000).map { RedisValue.integer($0) })
        // The same through concurrent single sends sharing the connection.
        let echoes = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for index in 0..<2_000 {
                group.addTask { (index, try await redis.send("ECHO", "value-\(index)").string) }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        #expect(echoes.count == 2_000)
        #expect(echoes.allSatisfy { $0.value == "value-\($0.key)" })
        try await redis.delete(key)
    }

    @Test("a script runs by its SHA and is loaded again after SCRIPT FLUSH")
    func scriptsReloadAfterFlush() async throws {
        let redis = try testRedisClient()
        defer { redis.shutdown() }
        let script = RedisScript("return tonumber(ARGV[1]) + #KEYS -- \(UUID().uuidString)")
        #expect(try await redis.evaluate(script, keys: ["a", "b"], arguments: ["40"]) == .integer(42))
        try await redis.send("SCRIPT", "FLUSH")
        #expect(try await redis.evaluate(script, keys: ["a"], arguments: ["1"]) == .integer(2))
        // The fallback cached it again: the next call runs by its SHA.
        #expect(try await redis.send("SCRIPT", "EXISTS", script.sha1).array?.first?.int == 1)
    }

    @Test("a blocked XREADGROUP does not hold up other commands and is woken by an XADD from another client")
    func blockingReadWakesQuickly() async throws {
        let redis = try testRedisClient()
        let writer = try testRedisClient()
        defer {
            redis.shutdown()
            writer.shutdown()
        }
        let stream = uniqueKey("stream")
        try await redis.xgroupCreate(stream, group: "g")
        let clock = ContinuousClock()
        async let read = redis.xreadgroup(group: "g", consumer: "c1", key: stream, count: 1, block: .seconds(30))
        try await Task.sleep(for: .milliseconds(200))
        // Meanwhile, ordinary commands on the same client answer: were they queued behind the read, they would
        // wait for its 30 s block (the XADD that ends it comes only after them).
        let pingStart = clock.now
        for _ in 0..<10 { _ = try await redis.ping() }
        #expect(clock.now - pingStart < .seconds(10))
        let added = clock.now
        let id = try await writer.xadd(stream, fields: [("n", "1")])
        let entries = try await read
        let latency = clock.now - added
        #expect(entries.map(\.id) == [id])
        #expect(entries.first?.fields == ["n": "1"])
        // Woken by the XADD, not by the 30 s block running out. The wake-up latency itself (a few milliseconds)
        // is measured by `make bench-redis`, not asserted here: a test shares two cores with the whole suite.
        #expect(latency < .seconds(5), "woke \(latency) after the XADD")
        try await redis.delete(stream)
    }

    @Test("a reply slower than the command timeout fails with .timeout, and the client recovers")
    func commandTimeout() async throws {
        // A server of its own: DEBUG SLEEP stalls the whole server, which must not disturb other tests.
        let server = try await ManagedServer.redis(port: TestEnvironment.freePort(), extraArguments: ["--enable-debug-command", "local"])
        defer { Task { await server.shutdown() } }
        let redis = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: server.port, commandTimeout: .milliseconds(300)))
        defer { redis.shutdown() }
        let clock = ContinuousClock()
        let start = clock.now
        await #expect {
            try await redis.send("DEBUG", "SLEEP", "6")
        } throws: { error in
            (error as? RedisClientError)?.code == .timeout
        }
        // It failed well before the reply could have come (6 s), whatever the load on the machine.
        #expect(clock.now - start < .seconds(4))
        // DEBUG SLEEP blocks the whole server; once it is over the client answers again by itself.
        try await expectEventually(.seconds(15)) { (try? await redis.ping()) == "PONG" }
    }
}

@Suite("Redis killed and restarted", .serialized)
struct RedisRestartTests {
    @Test("in-flight commands fail with a clear error, the client reconnects by itself, later commands succeed")
    func reconnectsAfterRestart() async throws {
        let server = try await ManagedServer.redis(port: TestEnvironment.freePort())
        var configuration = RedisConfiguration(host: "127.0.0.1", port: server.port)
        configuration.connectTimeout = .milliseconds(500)
        let redis = RedisClient(configuration: configuration)
        defer { redis.shutdown() }
        #expect(try await redis.set("k", "before"))

        // A blocking BLPOP that Redis holds (on a leased connection) and a burst of ordinary pipelined
        // commands are in flight when the server dies.
        let held = Task { try await redis.send("BLPOP", "nothing-here", "10") }
        try await Task.sleep(for: .milliseconds(100))
        let burst = Task { try await redis.pipeline((0..<5_000).map { _ in RedisCommand("INCR", "n") }) }
        await server.kill()

        await #expect {
            _ = try await held.value
        } throws: { error in
            [.connectionClosed, .connectionFailed].contains((error as? RedisClientError)?.code)
        }
        // The burst either completed before the kill or failed clearly; it never hangs.
        if case .failure(let error) = await burst.result {
            #expect([.connectionClosed, .connectionFailed].contains((error as? RedisClientError)?.code))
        }
        // While the server is down, commands fail fast with connectionFailed.
        let clock = ContinuousClock()
        let start = clock.now
        await #expect {
            try await redis.ping()
        } throws: { error in
            (error as? RedisClientError)?.code == .connectionFailed
        }
        #expect(clock.now - start < .seconds(3))

        try await server.start()
        #expect(try await redis.ping() == "PONG")
        #expect(try await redis.set("k", "after"))
        #expect(try await redis.get("k") == "after")
        await server.shutdown()
    }
}

@Suite("Redis over TLS with an ACL user", .serialized)
struct RedisTLSTests {
    /// A certificate authority and a server certificate for 127.0.0.1, made with the openssl tool in a fresh folder.
    static func certificates() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("redis-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try "subjectAltName=IP:127.0.0.1\n".write(to: folder.appendingPathComponent("ext.cnf"), atomically: true, encoding: .utf8)
        for arguments in [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=chat-test-ca"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=chat-test-redis"],
            ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2",
             "-extfile", "ext.cnf"],
            // A second authority, trusted by nobody's server.
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.crt", "-days", "2", "-subj", "/CN=other-ca"],
        ] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["openssl"] + arguments
            process.currentDirectoryURL = folder
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw ManagedServerError(message: "openssl \(arguments[0]) failed") }
        }
        return folder
    }

    @Test("rediss:// with user and password: commands work; a wrong password, an untrusted certificate and plain TCP fail clearly", .timeLimit(.minutes(1)))
    func tlsWithACLUser() async throws {
        let folder = try Self.certificates()
        defer { try? FileManager.default.removeItem(at: folder) }
        let port = TestEnvironment.freePort()
        let server = try await ManagedServer.redis(port: port, extraArguments: [
            "--port", "0", "--tls-port", "\(port)", "--tls-cert-file", folder.appendingPathComponent("server.crt").path,
            "--tls-key-file", folder.appendingPathComponent("server.key").path, "--tls-ca-cert-file", folder.appendingPathComponent("ca.crt").path,
            "--tls-auth-clients", "no", "--user", "chat", "on", ">s3cret%pass", "~*", "&*", "+@all", "--user", "default", "off",
        ])
        defer { Task { await server.shutdown() } }
        func client(_ url: String, ca: String? = "ca.crt") throws -> RedisClient {
            var configuration = try RedisConfiguration(url: url)
            configuration.tlsCAFile = ca.map { folder.appendingPathComponent($0).path }
            configuration.connectTimeout = .seconds(2)
            configuration.commandTimeout = .seconds(2)
            return RedisClient(configuration: configuration)
        }
        // The password's % is written %25 in the URL.
        let good = try client("rediss://chat:s3cret%25pass@127.0.0.1:\(port)")
        defer { good.shutdown() }
        #expect(try await good.set("tls-key", "over TLS"))
        #expect(try await good.send("GET", "tls-key").string == "over TLS")
        #expect(try await good.send("ACL", "WHOAMI").string == "chat")

        for (url, ca) in [
            ("rediss://chat:wrong@127.0.0.1:\(port)", "ca.crt"), ("rediss://chat:s3cret%25pass@127.0.0.1:\(port)", "other.crt"),
            ("redis://chat:s3cret%25pass@127.0.0.1:\(port)", "ca.crt"),
        ] {
            let bad = try client(url, ca: ca)
            defer { bad.shutdown() }
            await #expect(throws: (any Error).self, "\(url) with \(ca)") { _ = try await bad.ping() }
        }
    }

    @Test("REDIS_URL: a user needs a password; errors never print the password; rediss:// turns TLS on")
    func urlParsing() throws {
        let tls = try RedisConfiguration(url: "rediss://app:pw@redis.example.com:6390/2")
        #expect(tls.tls && tls.username == "app" && tls.password == "pw" && tls.host == "redis.example.com" && tls.port == 6390 && tls.database == 2)
        let plain = try RedisConfiguration(url: "redis://:pw@localhost")
        #expect(!plain.tls && plain.username == nil && plain.password == "pw")
        #expect(throws: ConfigurationError.self) { try RedisConfiguration(url: "redis://app:@localhost") }
        do {
            _ = try RedisConfiguration(url: "http://app:topsecret@localhost")
            Issue.record("accepted an http URL")
        } catch {
            #expect(!"\(error)".contains("topsecret"))
        }
    }
}

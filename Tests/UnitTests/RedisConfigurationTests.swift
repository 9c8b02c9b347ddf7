import ChatCore
import Testing

@testable import Queue

@Suite("REDIS_URL parsing")
struct RedisConfigurationTests {
    @Test("host, port, password and database are read")
    func parsesFullURL() throws {
        let configuration = try RedisConfiguration(url: "redis://:s3cret@cache.internal:6390/2")
        #expect(configuration.host == "cache.internal")
        #expect(configuration.port == 6390)
        #expect(configuration.password == "s3cret")
        #expect(configuration.database == 2)
    }

    @Test("a bare host takes the default port and database")
    func parsesBareHost() throws {
        let configuration = try RedisConfiguration(url: "redis://localhost")
        #expect(configuration.host == "localhost")
        #expect(configuration.port == 6380)
        #expect(configuration.password == nil)
        #expect(configuration.database == 0)
    }

    @Test("a refused URL's error never shows its password", arguments: [
        "http://:hunter2secret@h:1", "redis://:hunter2secret@h:99999", "redis://user:hunter2secret@:1", "redis://:hunter2secret@h:abc",
    ])
    func passwordNotShown(_ url: String) {
        do {
            _ = try RedisConfiguration(url: url)
            Issue.record("\(url) was accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("REDIS_URL"))
            #expect(!text.contains("hunter2secret"), "\(text)")
            #expect(!text.contains("user"), "\(text)")
        }
    }

    @Test("bad URLs are refused with a line naming REDIS_URL", arguments: ["http://x:1", "redis://:1", "redis://h:99999", "redis://h:1/x", "redis://h:abc"])
    func rejectsBadURLs(url: String) {
        #expect {
            _ = try RedisConfiguration(url: url)
        } throws: { error in
            (error as? ConfigurationError)?.message.contains("REDIS_URL") == true
        }
    }

    @Test("scripts are named by the SHA-1 of their source")
    func scriptHash() {
        // SHA-1("return 1") as Redis's SCRIPT LOAD reports it.
        #expect(RedisScript("return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
    }
}

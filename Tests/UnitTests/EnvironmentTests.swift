import ChatCore
import Testing

@Suite("settings from the environment")
struct EnvironmentTests {
    @Test("defaults apply when unset or blank")
    func defaults() throws {
        let environment = Environment(["PORT": "  "])
        #expect(try environment.int("PORT", default: 3002) == 3002)
        #expect(environment.string("HOST", default: "0.0.0.0") == "0.0.0.0")
    }

    @Test("bad values fail with a line naming the setting")
    func badValues() {
        let environment = Environment(["PORT": "70000", "FLAG": "maybe", "WAIT_MS": "-1"])
        #expect(throws: ConfigurationError("PORT must be an integer in 1...65535 (got 70000)")) {
            try environment.int("PORT", default: 1, in: 1...65535)
        }
        #expect(throws: ConfigurationError.self) { try environment.bool("FLAG", default: false) }
        #expect(throws: ConfigurationError.self) { try environment.milliseconds("WAIT_MS", default: .seconds(1)) }
        #expect(throws: ConfigurationError("SECRET is required but not set")) { try environment.required("SECRET") }
    }

    @Test("session ids are 24 hex digits")
    func sessionIDs() {
        #expect(SessionID.isValid("65a1b2c3d4e5f60718293a4b"))
        #expect(!SessionID.isValid("65a1b2c3d4e5f60718293a4"))
        #expect(!SessionID.isValid("65a1b2c3d4e5f60718293a4g"))
        #expect(!SessionID.isValid("../../etc/passwd"))
    }
}

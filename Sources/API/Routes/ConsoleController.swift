import ChatCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The web console: the static files of `Sources/API/Resources/console` (shipped in the target's resource bundle
/// beside the executable, read once at start) at `/console/`, `/` sending a browser there, and
/// `/console/config.json`, where the console finds the auth and accounting services. Every answer carries a
/// strict Content-Security-Policy: the console's own scripts and styles only, and calls to this API and those
/// two services only.
struct ConsoleController: Sendable {
    /// The console's files by name (`index.html`, `app.js`…) with their content types.
    let files: [String: (type: String, body: ByteBuffer)]
    let config: ByteBuffer
    let headers: HTTPFields

    /// The public URLs of the auth and accounting services, as a browser reaches them (`CONSOLE_AUTH_URL`,
    /// `CONSOLE_ACCOUNTING_URL`); empty for none (the console then takes a pasted token and shows no balance).
    init(authURL: String, accountingURL: String, logger: Logger = Logger(label: "chat-api.console")) {
        let folder = Bundle.main.bundleURL.appendingPathComponent("chat-service_API.resources/console")
        var files: [String: (type: String, body: ByteBuffer)] = [:]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names {
            guard let type = Self.contentType(of: name), let data = try? Data(contentsOf: folder.appendingPathComponent(name)) else { continue }
            files[name] = (type, ByteBuffer(bytes: data))
        }
        if files["index.html"] == nil {
            logger.warning("no console beside the executable; /console/ answers 503", metadata: ["path": "\(folder.path)"])
        }
        self.files = files
        var body = #"{"apiURL":"","authURL":""#
        JSONText.appendEscaped(authURL, to: &body)
        body += #"","accountingURL":""#
        JSONText.appendEscaped(accountingURL, to: &body)
        body += #""}"#
        config = ByteBuffer(string: body)
        let connect = (["'self'"] + [authURL, accountingURL].compactMap(Self.origin)).joined(separator: " ")
        headers = [
            HTTPField.Name("Content-Security-Policy")!:
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src \(connect); "
                + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
            .cacheControl: "no-cache",
        ]
    }

    func register(on router: some RouterMethods<ChatRequestContext>) {
        router.get("/") { _, _ in Self.redirect }
        // One route for both (the router ignores a trailing slash): the page at `/console/`, whose relative
        // links then resolve, and a redirect there from `/console`.
        router.get("/console") { request, _ in request.uri.path.hasSuffix("/") ? try file("index.html") : Self.redirect }
        router.get("/console/config.json") { _, _ in
            var fields = headers
            fields[.contentType] = "application/json"
            return Response(status: .ok, headers: fields, body: ResponseBody(byteBuffer: config))
        }
        router.get("/console/:file") { _, context in try file(context.parameters.require("file")) }
    }

    static var redirect: Response { Response(status: .found, headers: [.location: "/console/"]) }

    func file(_ name: String) throws -> Response {
        guard !files.isEmpty else {
            throw ChatError(.unavailable, code: "CONSOLE_MISSING", message: "The console is not installed with this server")
        }
        guard let file = files[name] else { throw ChatError(.notFound, code: "NOT_FOUND", message: "No such file") }
        var fields = headers
        fields[.contentType] = file.type
        return Response(status: .ok, headers: fields, body: ResponseBody(byteBuffer: file.body))
    }

    /// The content type of a console file by its extension; nil for a file that is not served.
    static func contentType(of name: String) -> String? {
        switch (name as NSString).pathExtension {
        case "html": "text/html; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        default: nil
        }
    }

    /// `scheme://host[:port]` of a URL, for the policy's `connect-src`; nil for an empty or malformed one.
    static func origin(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host,
            scheme == "http" || scheme == "https"
        else { return nil }
        return components.port.map { "\(scheme)://\(host):\($0)" } ?? "\(scheme)://\(host)"
    }
}

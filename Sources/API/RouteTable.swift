import Hummingbird
import NIOConcurrencyHelpers

/// Registers routes on a router and keeps the list of what it registered (method and full path template), so
/// that a test can hold the routes chat-api serves against its OpenAPI document: none undocumented, none
/// documented that is not served.
final class RouteTable<Context: RequestContext>: RouterMethods {
    /// The router the routes go to.
    let router: Router<Context>
    /// The router that decides WebSocket upgrades (its routes are the upgraded forms of routes of `router`).
    var webSockets: Router<Context>?
    private let registered = NIOLockedValueBox<[(method: String, path: String)]>([])

    init(_ router: Router<Context>) {
        self.router = router
    }

    /// Every route registered so far, as `METHOD /path/{param}` (OpenAPI's template style).
    var routes: [String] {
        registered.withLockedValue { $0.map { "\($0.method) \(Self.openAPIPath($0.path))" } }
    }

    @discardableResult func on<Responder: HTTPResponder>(_ path: RouterPath, method: HTTPRequest.Method, responder: Responder) -> Self
    where Responder.Context == Context {
        registered.withLockedValue { $0.append((method.rawValue, path.description)) }
        router.on(path, method: method, responder: responder)
        return self
    }

    @discardableResult func add(middleware: any MiddlewareProtocol<Request, Response, Context>) -> Self {
        router.add(middleware: middleware)
        return self
    }

    /// `/sessions/:id` (or `{id}`) → `/sessions/{id}`; no trailing slash (but `/`).
    static func openAPIPath(_ path: String) -> String {
        let parts = path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
        return "/" + parts.joined(separator: "/")
    }
}

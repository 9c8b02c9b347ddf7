import Hummingbird

/// The per-request state of auth-standin: the logger and the client's address, which the login throttle counts by.
struct AuthRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The peer's IP address (never a forwarded header, which a client could forge); nil in in-process tests.
    let clientAddress: String?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Login and refresh bodies are small; anything bigger than this is refused with 413.
    var maxUploadSize: Int { 16 * 1024 }
}

import ChatCore
import Hummingbird

/// The per-request state: after authentication, the caller.
struct AccountingRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The caller, set by `AuthenticationMiddleware`.
    var user: AuthenticatedUser?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// The caller; only routes behind `AuthenticationMiddleware` use it.
    func requireUser() throws -> AuthenticatedUser {
        guard let user else { throw AccountingErrors.invalidToken }
        return user
    }

    /// The caller, if their role is one of `roles`; 403 otherwise.
    func requireRole(_ roles: UserRole...) throws -> AuthenticatedUser {
        let user = try requireUser()
        guard roles.contains(user.role) else { throw AccountingErrors.forbidden }
        return user
    }
}

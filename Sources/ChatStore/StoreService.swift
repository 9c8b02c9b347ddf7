import ServiceLifecycle

/// Lets a `ServiceGroup` own the store: it runs until shutdown, then stops the store's threads and pool.
public struct StoreService: Service {
    let store: MongoSessionStore

    /// A service around `store`.
    public init(store: MongoSessionStore) {
        self.store = store
    }

    /// Waits for graceful shutdown, then shuts the store down.
    public func run() async throws {
        try? await gracefulShutdown()
        try await store.shutdown()
    }
}

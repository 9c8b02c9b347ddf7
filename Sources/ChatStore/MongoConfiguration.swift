import ChatCore

/// Where MongoDB is, how long to wait for it and how many threads may block on it.
public struct MongoConfiguration: Sendable, Equatable {
    /// A MongoDB connection string; its path names the database (`chat` when it has none).
    public var uri: String
    /// The longest a call waits for the database (server selection, connecting, each socket read)
    /// unless the URI sets `serverSelectionTimeoutMS`, `connectTimeoutMS` or `socketTimeoutMS` itself.
    public var timeout: Duration
    /// How many database calls may run at once, each on a thread of its own.
    public var threadCount: Int

    /// Creates a configuration; `timeout` must be positive and `threadCount` at least 1.
    public init(uri: String = "mongodb://127.0.0.1:27018/chat", timeout: Duration = .seconds(5), threadCount: Int = 4) {
        self.uri = uri
        self.timeout = timeout
        self.threadCount = threadCount
    }

    /// `timeout` in whole milliseconds, at least 1, as libmongoc's URI options want it.
    var timeoutMilliseconds: Int32 {
        let (seconds, attoseconds) = timeout.components
        let milliseconds = seconds.multipliedReportingOverflow(by: 1000)
        guard !milliseconds.overflow else { return Int32.max }
        return Int32(clamping: max(1, milliseconds.partialValue + attoseconds / 1_000_000_000_000_000))
    }
}

extension MongoConfiguration {
    /// `MONGO_URI` (default `defaultURI`; must be a `mongodb://` or `mongodb+srv://` URI), `MONGO_TIMEOUT_MS`
    /// (5 s) and `MONGO_THREADS` (4), as every process that uses MongoDB reads them.
    public init(environment: Environment, defaultURI: String) throws {
        let uri = environment.string("MONGO_URI", default: defaultURI)
        guard uri.hasPrefix("mongodb://") || uri.hasPrefix("mongodb+srv://") else {
            throw ConfigurationError("MONGO_URI must start with mongodb:// or mongodb+srv://")
        }
        self.init(
            uri: uri,
            timeout: try environment.milliseconds("MONGO_TIMEOUT_MS", default: .seconds(5)),
            threadCount: try environment.int("MONGO_THREADS", default: 4, in: 1...256)
        )
    }
}

// swift-tools-version:6.2
import PackageDescription

/// Every target builds in Swift 6 language mode with strict concurrency (the default for tools 6.x).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "chat-service",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chat-api", targets: ["API"]),
        .executable(name: "chat-worker", targets: ["Worker"]),
        .executable(name: "redis-bench", targets: ["RedisBench"]),
        .executable(name: "bedrock-emulator", targets: ["BedrockEmulator"]),
        .executable(name: "bedrock-bench", targets: ["BedrockBench"]),
        .executable(name: "auth-standin", targets: ["AuthStandin"]),
        .executable(name: "accounting-standin", targets: ["AccountingStandin"]),
        .executable(name: "chat-bench", targets: ["ChatBench"]),
        .executable(name: "accounting-bench", targets: ["AccountingBench"]),
        .library(name: "Queue", targets: ["Queue"]),
    ],
    // `swift build --traits OTLP`: chat-api and chat-worker export their spans over OTLP/HTTP (swift-otel) when
    // OTEL_EXPORTER_OTLP_ENDPOINT is set. Off by default: swift-otel and swift-protobuf add minutes to a clean
    // build (docs/operations.md has the figures).
    traits: [.trait(name: "OTLP", description: "Export traces over OTLP/HTTP with swift-otel")],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // Built only with the OTLP trait (see `traits`).
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // C libraries (Debian: libhiredis-dev, libmongoc-dev). hiredis sits in /usr/include and needs no flags;
        // its pkg-config file adds -D_FILE_OFFSET_BITS=64, which SwiftPM drops with a warning, so it is not used.
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CMongoc", pkgConfig: "libmongoc-1.0", providers: [.apt(["libmongoc-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),

        // Domain types, configuration, errors and the seams' protocols. Imports no other module of ours.
        .target(
            name: "ChatCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // The model catalog file (MODEL_CATALOG_PATH, JSON or YAML) read at start over the built-in catalog.
        .target(
            name: "Catalog",
            dependencies: ["ChatCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // The Redis client, the job queue and the per-session event streams.
        .target(
            name: "Queue",
            dependencies: [
                "CHiredis",
                "ChatCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The chat's live state in Redis: session locks, job records, the sessions' event streams, what a
        // generation needs to start (owner, model, history), and the one reader per process that fans events out.
        .target(
            name: "ChatState",
            dependencies: [
                "ChatCore", "Queue",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Sessions and messages in MongoDB, over libmongoc on a thread pool.
        .target(
            name: "ChatStore",
            dependencies: [
                "CMongoc",
                "ChatCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // What every HTTP process exports: the Prometheus registry behind swift-metrics, `/metrics`, and the HTTP
        // request metrics by route template.
        .target(
            name: "Telemetry",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "OTel", package: "swift-otel", condition: .when(traits: ["OTLP"])),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Cross-origin requests from browser pages (CORS), the same for chat-api and the stand-ins.
        .target(
            name: "CORS",
            dependencies: [
                "ChatCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        // AWS Signature Version 4: signing and (for the emulator) verifying. Depends only on Crypto.
        .target(
            name: "SigV4",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The AWS event-stream binary framing: an incremental decoder and an encoder.
        .target(
            name: "EventStream",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // The Bedrock Runtime client: credentials, InvokeModel and InvokeModelWithResponseStream, model families.
        .target(
            name: "Bedrock",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "ChatCore", "SigV4", "EventStream",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The accounting service's client: credit checks, reservations, finalization.
        .target(
            name: "Accounting",
            dependencies: [
                "ChatCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A Bedrock Runtime stand-in speaking the real wire protocol; never linked into chat-api or chat-worker.
        .executableTarget(
            name: "BedrockEmulator",
            dependencies: [
                "Catalog",
                "Telemetry",
                "ChatCore", "SigV4", "EventStream",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The guide's auth service, for development and tests (port 3000); never linked into chat-api or chat-worker.
        .executableTarget(
            name: "AuthStandin",
            dependencies: [
                "Telemetry",
                "CORS",
                "ChatCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The guide's accounting service on SQLite, for development and tests (port 3001).
        .executableTarget(
            name: "AccountingStandin",
            dependencies: [
                "Catalog",
                "Telemetry",
                "CORS",
                "ChatCore", "ChatStore", "CSQLite",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "BedrockBench",
            dependencies: [
                "Bedrock", "EventStream", "ChatCore", "SigV4",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The load generator: virtual users streaming through chat-api, LiteLLM or the emulator straight.
        .executableTarget(
            name: "ChatBench",
            dependencies: [
                "Bedrock", "ChatCore", "SigV4",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // Load on a running accounting stand-in: N users each reserving and settling in a loop.
        .executableTarget(
            name: "AccountingBench",
            dependencies: [
                "ChatCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "API",
            dependencies: [
                "Catalog",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "Telemetry",
                "CORS",
                "ChatCore",
                "Queue",
                "ChatState",
                "ChatStore",
                "Accounting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Resources/openapi.json"), .copy("Resources/console")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Worker",
            dependencies: [
                "Catalog",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "Telemetry",
                "ChatCore",
                "Queue",
                "ChatState",
                "ChatStore",
                "Bedrock",
                "Accounting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "RedisBench",
            dependencies: ["Queue", .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),

        // Fast tests: no servers.
        .testTarget(
            name: "UnitTests",
            dependencies: ["ChatCore", "Catalog", "Queue", "CHiredis", "SigV4", "EventStream", "Bedrock", "BedrockEmulator", "ChatBench", "ChatStore"],
            swiftSettings: swiftSettings
        ),
        // Tests against real redis-server, SecantusDB and the processes, started by `make test`.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "ChatCore", "Catalog", "Queue", "ChatState", "ChatStore", "API", "Worker", "Bedrock", "SigV4", "EventStream", "AuthStandin", "AccountingStandin", "Accounting", "Telemetry", "CORS",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "WSClient", package: "swift-websocket"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

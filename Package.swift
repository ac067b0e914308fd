// swift-tools-version:6.2
import PackageDescription

/// Every Swift target of the platform compiles in the Swift 6 language mode (strict concurrency).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "swift-tenant-platform",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "auth", targets: ["AuthMain"]),
        .executable(name: "provisioning", targets: ["ProvisioningMain"]),
        .executable(name: "realtime", targets: ["RealtimeMain"]),
        .executable(name: "storage", targets: ["StorageMain"]),
        .executable(name: "postgres-bench", targets: ["PostgresBench"]),
        .executable(name: "provisioning-bench", targets: ["ProvisioningBench"]),
        .executable(name: "auth-bench", targets: ["AuthBench"]),
    ],
    dependencies: [
        // `traits: []` keeps Hummingbird's optional swift-configuration / full-Foundation features off:
        // nothing here needs them, and a stable trait set avoids needless rebuilds (MEASURED.md).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // SHA-256 for API-key hashes; jwt-kit (tokens, later) needs the same 4.x line.
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // ES256 access tokens and the JWKS: developer sessions, tenant users' tokens, and their
        // offline verification in realtime and storage (ServiceKit).
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        // Realtime's Phoenix-channels websocket (`/realtime/v1/websocket`): the websocket core,
        // and the client its tests speak through.
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
    ],
    targets: [
        // MARK: C bindings
        .systemLibrary(
            name: "CLibPQ",
            path: "Shared/CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CArgon2",
            path: "Shared/CArgon2",
            pkgConfig: "libargon2",
            providers: [.apt(["libargon2-dev"])]
        ),
        .target(
            name: "CCurl",
            path: "Shared/CCurl",
            linkerSettings: [.linkedLibrary("curl")]
        ),

        // MARK: Shared kits (each lists every module it imports)
        .target(
            name: "Contracts",
            path: "Shared/Contracts",
            swiftSettings: swiftSettings
        ),
        // Retry delays and waiting with a deadline: the one implementation every kit and
        // service uses. A leaf: the standard library only.
        .target(
            name: "Resilience",
            path: "Shared/Resilience",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ",
                "Resilience",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Shared/Postgres",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HTTPClient",
            dependencies: [
                "CCurl",
                "Resilience",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Shared/HTTPClient",
            swiftSettings: swiftSettings
        ),
        // The clients of other services' internal endpoints (tenant registry, API keys, projects,
        // tenant credentials), in a library so contract tests can drive the very code the services
        // call with.
        .target(
            name: "ServiceClients",
            dependencies: ["Contracts", "HTTPClient"],
            path: "Shared/ServiceClients",
            swiftSettings: swiftSettings
        ),
        // Runtime, configuration, logging, metrics, error shape, middleware, idempotency: what
        // every service is built from.
        .target(
            name: "ServiceKit",
            dependencies: [
                "Contracts",
                "Postgres",
                "HTTPClient",
                "Resilience",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),  // the server builders a service's application takes
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "JWTKit", package: "jwt-kit"),  // RemoteJWKS: tokens verified offline against another service's keys
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),  // ExpectContinueHandler sits among HTTP parts
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/ServiceKit",
            swiftSettings: swiftSettings
        ),
        // The tenant registry and its internal routes, tenant credentials (TenantAccess) and the
        // tenants migration shared by auth, realtime and storage.
        .target(
            name: "TenantKit",
            dependencies: [
                "Contracts",
                "Postgres",
                "HTTPClient",
                "ServiceClients",
                "ServiceKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Shared/TenantKit",
            resources: [.copy("Migrations")],
            swiftSettings: swiftSettings
        ),
        // argon2id hashing and the password policy: only auth links libargon2.
        .target(
            name: "Passwords",
            dependencies: [
                "CArgon2",
                "ServiceKit",  // PasswordPolicy answers with the platform's 422 (APIError)
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Shared/Passwords",
            // Resources/README.md says where the common-password list comes from (and its licence).
            exclude: ["Resources/README.md"],
            resources: [.copy("Resources/common-passwords.txt")],
            swiftSettings: swiftSettings
        ),

        // MARK: Services: a library each (buildApplication, buildRouter; what tests import) and a
        // thin executable (Main/App.swift) that runs it.
        .target(
            name: "Auth",
            dependencies: [
                "Contracts", "HTTPClient", "Passwords", "Postgres", "ServiceClients", "ServiceKit", "TenantKit",
                .product(name: "Crypto", package: "swift-crypto"),  // registration ids derived from the request (SHA-256)
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),  // SessionJanitor
            ],
            path: "Services/Auth",
            exclude: ["Main"],
            resources: [.copy("Migrations"), .copy("openapi.json")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Provisioning",
            dependencies: [
                "Contracts", "HTTPClient", "Postgres", "Resilience", "ServiceClients", "ServiceKit",
                .product(name: "Crypto", package: "swift-crypto"),  // Standard Webhooks signatures (HMAC-SHA256)
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),  // webhook targets are resolved on its blocking-work pool
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/Provisioning",
            exclude: ["Main"],
            resources: [.copy("Migrations"), .copy("TenantMigrations"), .copy("openapi.json")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Realtime",
            dependencies: [
                "Contracts", "Postgres", "ServiceKit", "TenantKit",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "WSCore", package: "swift-websocket"),
            ],
            path: "Services/Realtime",
            exclude: ["Main"],
            resources: [.copy("Migrations"), .copy("openapi.json")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Storage",
            dependencies: [
                "Contracts", "Postgres", "ServiceKit", "TenantKit",
                .product(name: "Crypto", package: "swift-crypto"),  // objects' SHA-256, hashed as they stream in
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Services/Storage",
            exclude: ["Main"],
            resources: [.copy("Migrations"), .copy("openapi.json")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "AuthMain", dependencies: ["Auth", "ServiceKit"], path: "Services/Auth/Main", swiftSettings: swiftSettings),
        .executableTarget(name: "ProvisioningMain", dependencies: ["Provisioning", "ServiceKit"], path: "Services/Provisioning/Main", swiftSettings: swiftSettings),
        .executableTarget(name: "RealtimeMain", dependencies: ["Realtime", "ServiceKit"], path: "Services/Realtime/Main", swiftSettings: swiftSettings),
        .executableTarget(name: "StorageMain", dependencies: ["Storage", "ServiceKit"], path: "Services/Storage/Main", swiftSettings: swiftSettings),

        // MARK: Tests and benchmarks
        .target(
            name: "TestSupport",
            dependencies: [
                "Auth", "Contracts", "HTTPClient", "Postgres", "Provisioning", "Realtime", "ServiceKit", "Storage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PostgresTests",
            dependencies: ["Postgres", "TestSupport"],
            path: "Tests/PostgresTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ResilienceTests",
            dependencies: ["Resilience"],
            path: "Tests/ResilienceTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HTTPClientTests",
            dependencies: [
                "HTTPClient", "Contracts", "Resilience", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/HTTPClientTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServiceTests",
            dependencies: [
                "Auth", "Contracts", "HTTPClient", "Passwords", "Postgres", "Provisioning", "Realtime", "Resilience", "ServiceClients",
                "ServiceKit", "Storage", "TenantKit", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),  // WebhookTests runs a receiver
            ],
            path: "Tests/ServiceTests",
            // Captured requests the tests read by path (Fixtures/upload/README.md).
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        // Consumer-driven contracts (Pact v3): consumer tests against a stub, writing contracts/pacts.
        .testTarget(
            name: "ContractTests",
            dependencies: [
                "Contracts", "HTTPClient", "ServiceClients", "ServiceKit", "TenantKit",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/ContractTests",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "PostgresBench",
            dependencies: ["Postgres", .product(name: "Logging", package: "swift-log")],
            path: "Tests/Benchmarks/PostgresBench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ProvisioningBench",
            dependencies: ["HTTPClient", "Contracts"],
            path: "Tests/Benchmarks/ProvisioningBench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "AuthBench",
            dependencies: ["Contracts", "HTTPClient", "Passwords", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/Benchmarks/AuthBench",
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)

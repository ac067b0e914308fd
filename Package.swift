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
        .executable(name: "auth", targets: ["Auth"]),
        .executable(name: "provisioning", targets: ["Provisioning"]),
        .executable(name: "realtime", targets: ["Realtime"]),
        .executable(name: "storage", targets: ["Storage"]),
        .executable(name: "postgres-bench", targets: ["PostgresBench"]),
        .executable(name: "provisioning-bench", targets: ["ProvisioningBench"]),
        .executable(name: "auth-bench", targets: ["AuthBench"]),
    ],
    dependencies: [
        // `traits: []` keeps Hummingbird's optional swift-configuration / full-Foundation features off:
        // nothing here needs them, and a stable trait set avoids needless rebuilds (MEASURED.md).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // SHA-256 for API-key hashes; jwt-kit (tokens, later) needs the same 4.x line.
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        // ES256 access tokens and the JWKS: developer sessions, tenant users' tokens, and their
        // offline verification in realtime and storage (ServiceKit).
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
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

        // MARK: Shared kits
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
        // The clients of other services' internal endpoints (tenant registry, API keys, projects),
        // in a library so contract tests can drive the very code the services call with.
        .target(
            name: "ServiceClients",
            dependencies: ["Contracts", "HTTPClient"],
            path: "Shared/ServiceClients",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ServiceKit",
            dependencies: [
                "CArgon2",
                "Contracts",
                "Postgres",
                "HTTPClient",
                "Resilience",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/ServiceKit",
            swiftSettings: swiftSettings
        ),

        // MARK: Services (one executable each, same shape)
        .executableTarget(
            name: "Auth",
            dependencies: [
                "ServiceKit", "ServiceClients", "Contracts", "Postgres", "HTTPClient",
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            path: "Services/Auth",
            // Resources/README.md says where the common-password list comes from (and its licence).
            exclude: ["Resources/README.md"],
            resources: [.copy("Migrations"), .copy("Resources/common-passwords.txt"), .copy("openapi.json")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Provisioning",
            dependencies: [
                "ServiceKit", "ServiceClients", "Contracts", "Postgres", "HTTPClient", "Resilience",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/Provisioning",
            resources: [.copy("Migrations"), .copy("TenantMigrations"), .copy("openapi.json")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Realtime",
            dependencies: ["ServiceKit"],
            path: "Services/Realtime",
            resources: [.copy("Migrations"), .copy("openapi.json")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Storage",
            dependencies: ["ServiceKit", .product(name: "NIOPosix", package: "swift-nio")],
            path: "Services/Storage",
            resources: [.copy("Migrations"), .copy("openapi.json")],
            swiftSettings: swiftSettings
        ),

        // MARK: Tests and benchmarks
        .target(
            name: "TestSupport",
            dependencies: ["Postgres", "HTTPClient", "Contracts", .product(name: "Logging", package: "swift-log")],
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
            name: "HTTPClientTests",
            dependencies: [
                "HTTPClient", "Contracts", "Resilience", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Tests/HTTPClientTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServiceTests",
            dependencies: ["ServiceKit", "ServiceClients", "TestSupport", "Contracts", .product(name: "JWTKit", package: "jwt-kit"), .product(name: "Crypto", package: "swift-crypto")],
            path: "Tests/ServiceTests",
            swiftSettings: swiftSettings
        ),
        // Consumer-driven contracts (Pact v3): consumer tests against a stub, writing contracts/pacts.
        .testTarget(
            name: "ContractTests",
            dependencies: [
                "ServiceClients", "ServiceKit", "HTTPClient", "Contracts",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/ContractTests",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "PostgresBench",
            dependencies: ["Postgres"],
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
            dependencies: ["ServiceKit", "HTTPClient", "Contracts", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/Benchmarks/AuthBench",
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "keyrotd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "keyrotd", targets: ["keyrotd"]),
        .executable(name: "keyrotd-gateway", targets: ["keyrotd-gateway"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        // The gateway only (keyrotd itself never links these): HTTP serving, TLS and upstream streaming.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // Pure core: configuration model and validation, time spans, the rotation
        // window, the schedule, the rotation state machine and the state schema.
        // No Glibc, no I/O, no clock.
        .target(
            name: "KeyRotation",
            dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]
        ),
        // libcurl behind typed one-line wrappers (curl_easy_setopt is variadic).
        .target(
            name: "CCurl",
            linkerSettings: [.linkedLibrary("curl")]
        ),
        // accept4 and SO_PEERCRED for the control socket (they need _GNU_SOURCE).
        .target(name: "CUnixSocket"),
        // libsystemd: sd_notify, sd_watchdog_enabled, sd_journal_sendv.
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // glibc's malloc_trim(3) (<malloc.h> is not in Swift's Glibc module).
        .systemLibrary(name: "CMalloc"),
        // One folder per seam: the state file, file-system checks of the config,
        // HTTP over libcurl and the Mistral provider, the hook runner, logging,
        // the control socket.
        .target(
            name: "KeyRotationAdapters",
            dependencies: [
                "KeyRotation",
                "CCurl",
                "CSystemd",
                "CUnixSocket",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ]
        ),
        // `keyrotd run`: the one loop that owns every key's machine and performs its actions.
        .target(
            name: "KeyRotationDaemon",
            dependencies: [
                "KeyRotation",
                "KeyRotationAdapters",
                "CMalloc",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "keyrotd",
            dependencies: [
                "KeyRotation",
                "KeyRotationAdapters",
                "KeyRotationDaemon",
                "CSystemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The gateway's pure core: its configuration, roles and models, money, request
        // bodies and usage, the spend ledger and rate limits. No I/O, no clock.
        .target(
            name: "GatewayCore",
            dependencies: ["KeyRotation", .product(name: "TOMLKit", package: "TOMLKit")]
        ),
        // The gateway's adapters and server: listeners, authentication, forwarding, the
        // admin socket, the file-backed store.
        .target(
            name: "GatewayServer",
            dependencies: [
                "GatewayCore",
                "KeyRotation",
                "KeyRotationAdapters",
                "CUnixSocket",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "keyrotd-gateway",
            dependencies: [
                "GatewayCore",
                "GatewayServer",
                "KeyRotation",
                "KeyRotationAdapters",
                "CSystemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Test-only helper processes (state-file writer killed by the crash tests).
        .executableTarget(
            name: "keyrotd-testhelper",
            dependencies: ["KeyRotation", "KeyRotationAdapters"]
        ),
        // Measurements for scripts/bench.
        .executableTarget(
            name: "keyrotd-bench",
            dependencies: ["KeyRotation", "KeyRotationAdapters"]
        ),
        // The gateway's benchmarks (scripts/bench gateway): a fast stand-in upstream and a
        // load generator on SwiftNIO, so neither is what limits the figures. keyrotd and
        // keyrotd-bench do not link NIO.
        .executableTarget(
            name: "keyrotd-gateway-bench",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "KeyRotationTests", dependencies: ["KeyRotation"]),
        .testTarget(name: "GatewayCoreTests", dependencies: ["GatewayCore", "KeyRotation"]),
        // Shared by the test targets: scratch directories, the local server process.
        .target(
            name: "TestSupport",
            dependencies: ["KeyRotation", "KeyRotationAdapters"],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "AdapterTests",
            dependencies: [
                "KeyRotation", "KeyRotationAdapters", "TestSupport",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "EndToEndTests", dependencies: ["KeyRotation", "KeyRotationAdapters", "TestSupport"]),
        // keyrotd-gateway as a process between real clients and the local server.
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "GatewayCore", "KeyRotation", "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version:6.0
// xform: a netstring RPC text-transformation service on a Twisted-style core.
// Zero package dependencies: only the toolchain's Foundation, Dispatch, Glibc,
// Synchronization and Swift Testing are used.
import PackageDescription

let package = Package(
    name: "xform",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "XformCore", targets: ["XformCore"]),
        .library(name: "XformReactor", targets: ["XformReactor"]),
        .library(name: "XformFraming", targets: ["XformFraming"]),
        .library(name: "XformTesting", targets: ["XformTesting"]),
        .library(name: "XformTransforms", targets: ["XformTransforms"]),
        .library(name: "XformServer", targets: ["XformServer"]),
        .library(name: "XformClient", targets: ["XformClient"]),
        // The client with a reactor thread of its own: `TransformClient.connect(host:port:)`.
        .library(name: "XformClientKit", targets: ["XformClientKit"]),
        // Everything `transform-server` is, as a library: a server with extra transforms is a
        // `main.swift` of a few lines (Part 16's twistd plugins).
        .library(name: "TransformServerKit", targets: ["TransformServerKit"]),
        .library(name: "XformProxy", targets: ["XformProxy"]),
        .library(name: "XformMetrics", targets: ["XformMetrics"]),
        .executable(name: "transform-server", targets: ["transform-server"]),
        .executable(name: "xform", targets: ["xform"]),
        .executable(name: "xform-bench", targets: ["xform-bench"]),
    ],
    dependencies: [],
    targets: [
        // Linux headers Glibc does not export: epoll, eventfd, timerfd, signalfd, accept4, pipe2, spawn flags.
        .target(name: "CXformShims", cSettings: [.define("_GNU_SOURCE")]),
        // Deferred, time, Protocol/Factory/Transport, Service, logging. No syscalls.
        .target(name: "XformCore"),
        // The epoll reactor: TCP, timers, callFromThread, thread pool, signals.
        .target(name: "XformReactor", dependencies: ["XformCore", "CXformShims"]),
        // Pure netstring and line decoders/encoders and the receivers built on them.
        .target(name: "XformFraming", dependencies: ["XformCore"]),
        // Test doubles shipped as a library: manual clock, string transport, pump, verifier.
        .target(name: "XformTesting", dependencies: ["XformCore"]),
        // The protocol-independent transforms and the guarded registry.
        .target(name: "XformTransforms", dependencies: ["XformCore"]),
        // The netstring and line transform protocols and the server assembly.
        .target(name: "XformServer", dependencies: ["XformCore", "XformFraming", "XformTransforms", "XformMetrics"]),
        // TransformProxy, RetryingCall, backoff.
        .target(name: "XformClient", dependencies: ["XformCore", "XformFraming"]),
        // TransformClient.connect: the client on a reactor thread it owns.
        .target(name: "XformClientKit", dependencies: ["XformClient", "XformCore", "XformReactor"]),
        // The transform proxy: a TransformBackend answering from upstream servers through a cache.
        .target(name: "XformProxy", dependencies: ["XformCore", "XformTransforms", "XformClient"]),
        // Prometheus text exposition and histograms: pure, no I/O.
        .target(name: "XformMetrics"),
        // Daemon support: command line, pidfile, log files, systemd, privileges, /proc figures.
        .target(name: "XformDaemon", dependencies: ["XformCore", "XformReactor", "CXformShims", "XformMetrics"]),

        // The two commands' logic (options, help, wiring), so executables stay thin and testable.
        .target(
            name: "XformCommands",
            dependencies: [
                "XformServer", "XformClient", "XformProxy", "XformReactor", "XformDaemon", "XformTransforms", "XformMetrics",
            ]),

        // The server as a library: TransformServerProgram.run(adding:), StandardErrorLogHandler.
        .target(
            name: "TransformServerKit", dependencies: ["XformCommands", "XformCore", "XformDaemon", "XformTransforms"]),

        .executableTarget(name: "transform-server", dependencies: ["TransformServerKit"]),
        .executableTarget(name: "xform", dependencies: ["XformCommands"]),
        .executableTarget(
            name: "xform-bench",
            dependencies: ["XformCore", "XformReactor", "XformFraming", "XformServer", "XformTransforms"]),

        .testTarget(name: "XformCoreTests", dependencies: ["XformCore", "XformTesting"]),
        .testTarget(name: "XformReactorTests", dependencies: ["XformReactor", "XformCore", "XformTesting"]),
        .testTarget(name: "XformFramingTests", dependencies: ["XformFraming", "XformTesting"]),
        .testTarget(
            name: "XformTransformsTests", dependencies: ["XformTransforms", "XformTesting"],
            // Golden files read through #filePath, not bundled as resources.
            exclude: ["Fixtures"]),
        .testTarget(
            name: "XformServerTests",
            dependencies: ["XformServer", "XformFraming", "XformTesting", "XformReactor", "XformMetrics"]),
        .testTarget(
            name: "XformClientTests",
            dependencies: ["XformClient", "XformClientKit", "XformServer", "XformTesting", "XformReactor"]),
        .testTarget(
            name: "XformProxyTests",
            dependencies: ["XformProxy", "XformClient", "XformServer", "XformTesting", "XformReactor", "XformTransforms"]),
        .testTarget(name: "XformDaemonTests", dependencies: ["XformDaemon", "XformReactor", "XformTesting"]),
        .testTarget(name: "XformMetricsTests", dependencies: ["XformMetrics"]),
        .testTarget(
            name: "XformCommandsTests",
            dependencies: [
                "XformCommands", "XformTesting", "XformServer", "XformClient", "XformReactor", "XformTransforms",
                "XformDaemon", "TransformServerKit",
            ]),
    ]
)

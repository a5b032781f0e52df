// swift-tools-version:6.0
// An example of the twistd-plugin way (Twisted Introduction, Part 16): a complete transform
// server with one extra transform, `pirate`, in a main.swift of a few lines. It depends on
// xform by path; every option, signal and daemon behaviour of transform-server comes with it.
import PackageDescription

let package = Package(
    name: "PirateServer",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "xform", path: "../..")],
    targets: [
        .executableTarget(
            name: "pirate-server",
            dependencies: [.product(name: "TransformServerKit", package: "xform")]),
    ]
)

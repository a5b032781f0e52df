// xform-bench: micro-benchmarks. `xform-bench deferred` measures Deferred chain costs.
let args = CommandLine.arguments.dropFirst()
switch args.first {
case "deferred":
    runDeferredBench()
case "serve":
    runServe(Array(args.dropFirst()))
default:
    print("usage: xform-bench deferred")
}

// xform-bench: benchmarks, never tests. Each subcommand prints its figures.
//   deferred    cost per callback of long Deferred chains
//   timers      delayed-call and callFromThread throughput of the epoll reactor
//   transforms  transform throughput: ASCII fast paths against the String paths
//   serve P     the bare transform server on 127.0.0.1:P, for load generators and profilers
let args = CommandLine.arguments.dropFirst()
switch args.first {
case "deferred":
    runDeferredBench()
case "timers":
    runReactorBench()
case "transforms":
    TransformBench.run()
case "serve":
    runServe(Array(args.dropFirst()))
default:
    print("usage: xform-bench deferred | timers | transforms | serve PORT [LINEPORT]")
}

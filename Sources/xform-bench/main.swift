// xform-bench: benchmarks, never tests. Each subcommand prints its figures.
//   deferred   cost per callback of long Deferred chains
//   timers     delayed-call and callFromThread throughput of the epoll reactor
//   serve P    the bare transform server on 127.0.0.1:P, for load generators and profilers
let args = CommandLine.arguments.dropFirst()
switch args.first {
case "deferred":
    runDeferredBench()
case "timers":
    runReactorBench()
case "serve":
    runServe(Array(args.dropFirst()))
default:
    print("usage: xform-bench deferred | timers | serve PORT [LINEPORT]")
}

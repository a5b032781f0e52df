// xform-bench: benchmarks, never tests. Each subcommand prints its figures.
//   deferred      cost per callback of long Deferred chains
//   async         async bodies: the reactor executor against a global Task + callFromThread
//   timers        delayed-call and callFromThread throughput of the epoll reactor
//   transforms    transform throughput: ASCII fast paths against the String paths
//   framing [F]   netstring and line receiver costs per frame (F filters scenarios)
//   serve P [L]   the bare transform server on 127.0.0.1:P, for load generators and profilers
let args = CommandLine.arguments.dropFirst()
switch args.first {
case "deferred":
    runDeferredBench()
case "async":
    runAsyncBodyBench()
case "timers":
    runReactorBench()
case "transforms":
    TransformBench.run()
case "framing":
    runFramingBench(only: args.dropFirst().first)
case "serve":
    runServe(Array(args.dropFirst()))
default:
    print("usage: xform-bench deferred | async | timers | transforms | framing [FILTER] | serve PORT [LINEPORT]")
}

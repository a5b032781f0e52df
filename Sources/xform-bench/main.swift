// xform-bench: benchmarks, never tests. Each subcommand prints its figures.
//   deferred      cost per callback of long Deferred chains
//   async         async bodies: the reactor executor against a global Task + callFromThread
//   timers        delayed-call and callFromThread throughput of the epoll reactor
//   transforms    transform throughput: ASCII fast paths against the String paths
//   locks         Synchronization.Mutex against PthreadMutex, uncontended and contended
//   linear [MAX]  every transform on pathological inputs, doubling up to MAX bytes (issue 10 §3)
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
case "locks":
    LockBench.run()
case "linear":
    LinearityBench.run(maxBytes: args.dropFirst().first.flatMap { Int($0) } ?? 256 * 1024)
case "framing":
    runFramingBench(only: args.dropFirst().first)
case "serve":
    runServe(Array(args.dropFirst()))
default:
    print("usage: xform-bench deferred | async | timers | transforms | locks | linear [MAX] | framing [FILTER] | serve PORT [LINEPORT]")
}

if CommandLine.arguments.dropFirst().first == "timers" {
    runReactorBench()
} else {
    print("not yet")
}

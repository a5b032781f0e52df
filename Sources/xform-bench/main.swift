// xform-bench: benchmark programs; results are printed, never asserted.
let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "transforms":
    TransformBench.run()
default:
    print("usage: xform-bench transforms")
}

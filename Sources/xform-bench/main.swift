// xform-bench: benchmark programs (see DESIGN.md section 5). `xform-bench <case>`.
let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "framing":
    runFramingBench(only: arguments.dropFirst().first)
default:
    print("usage: xform-bench framing [scenario-filter]")
}

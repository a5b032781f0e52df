import Glibc
import XformCommands

exit(XformCommand.main(arguments: Array(CommandLine.arguments.dropFirst())))

// transform-server: the logic lives in XformCommands (TransformServerCommand).
import Glibc
import XformCommands

// First, before any thread exists: block TERM, INT, HUP, USR1 and USR2 for the reactor's
// signalfd, and ignore SIGPIPE.
TransformServerCommand.prepareProcess()
exit(TransformServerCommand.main(arguments: CommandLine.arguments))

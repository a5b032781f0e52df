// transform-server: the whole program is TransformServerKit's entry point (which embedders use
// too, with their own transforms): it blocks the termination signals before any thread exists,
// ignores SIGPIPE, runs the command and exits with its status.
import TransformServerKit

TransformServerProgram.run()

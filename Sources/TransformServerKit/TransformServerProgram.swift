// What an embedder's main.swift needs besides this module: Transform, TransformError and
// TransformContext (XformTransforms), Deferred and Logger (XformCore).
@_exported import XformCore
@_exported import XformTransforms
import Glibc
import XformCommands

/// The whole `transform-server` program, as a library: the twistd-plugin way (*Twisted
/// Introduction*, Part 16) of serving your own transforms with every option, config file,
/// signal, pidfile, log and systemd behaviour of the real server.
///
/// A complete server with an extra transform is this `main.swift`:
///
/// ```swift
/// import TransformServerKit
///
/// TransformServerProgram.run(adding: [
///     Transform(name: "pirate", summary: "Talk like a pirate.", body: .synchronous { "Arr, " + $0 }),
/// ])
/// ```
///
/// `transform-server` itself is `TransformServerProgram.run()`.
public enum TransformServerProgram {
    /// Runs the server with the process's command line and exits with its status; never returns.
    ///
    /// Call it first thing in `main.swift`: it blocks the termination signals before any
    /// thread exists (they are read from the reactor's signalfd) and ignores SIGPIPE.
    ///
    /// - Parameter transforms: served besides the built-in ones. A name that is not valid
    ///   or is already taken (a built-in's) stops the start-up with status 78 (EX_CONFIG).
    public static func run(adding transforms: [Transform] = []) -> Never {
        exit(main(arguments: CommandLine.arguments, adding: transforms))
    }

    /// Runs the server with `arguments` (program name first) and returns its exit status:
    /// ``run(adding:)`` without the exit, for tests and wrappers. With `--daemon` the launcher
    /// process does not return: it exits with the daemon's start-up outcome.
    public static func main(arguments: [String], adding transforms: [Transform] = []) -> Int32 {
        TransformServerCommand.prepareProcess()
        return TransformServerCommand.main(arguments: arguments, transforms: transforms)
    }
}

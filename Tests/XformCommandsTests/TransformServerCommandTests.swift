import Glibc
import Synchronization
import Testing
import XformCore
import XformDaemon
import XformReactor
import XformServer
import XformTesting
import XformTransforms

@testable import XformCommands

/// Runs the command's decision step in memory, as `main` would with this command line.
private func invoke(
    _ arguments: [String], cwd: String = "/srv/xform", environment: [String: String] = [:],
    files: [String: String] = [:]
) -> TransformServerInvocation {
    TransformServerCommand.evaluate(
        arguments, environment: environment, currentDirectory: cwd,
        configFileReader: { (path) throws(CommandLineError) -> String in
            guard let text = files[path] else {
                throw .configFileUnreadable(path: path, reason: "No such file or directory")
            }
            return text
        })
}

private func options(_ arguments: [String], cwd: String = "/srv/xform", files: [String: String] = [:])
    -> TransformServerOptions?
{
    if case .run(let o) = invoke(arguments, cwd: cwd, files: files) { return o }
    return nil
}

private let expectedHelp = """
    OVERVIEW: Serves text transformations over the netstring and line protocols,
    and HTTP.

    Runs in the foreground and logs to standard error unless --daemon is given.
    Every option can also be set in a --config file (key = value, keys are the long
    option names); the command line wins.

    USAGE: transform-server [<options>]

    OPTIONS:
      --interface, --iface <address>
                              The address both ports listen on. (default: 127.0.0.1)
      --netstring-port <port> The netstring port; 0 picks a free port, shown in the
                              log. (default: 10001)
      --line-port <port>      The line port; 0 picks a free port, shown in the log.
                              (default: 10002)
      --http-port <port>      Also serve HTTP on this port: POST /transform/NAME,
                              GET /metrics, /healthz, /readyz, /transforms
                              (default: no HTTP port).
      --max-request-bytes <bytes>
                              The longest request accepted, in bytes: on the
                              netstring port the whole payload, name included
                              ('!upper.' + text: 99,992 bytes of text for upper by
                              default); on the line port the text of a block.
                              Clients read it with ?limits. (default: 99999)
      --max-line-length <bytes>
                              The longest line accepted on the line port. (default:
                              16384)
      --idle-timeout <duration>
                              Close connections with no complete request for this
                              long; 0 never does. (default: 120s)
      --request-timeout <duration>
                              Close connections whose request is not complete this
                              long after its first byte; 0 never does. (default:
                              30s)
      --max-connections <count>
                              The most open connections per port. (default: 1024)
      --max-concurrent-async <count>
                              The most asynchronous and thread-pool transforms
                              underway at once, shared fairly among connections; 0
                              is unbounded. Default: twice the thread pool size.
                              Re-read from --config on HUP.
      --shutdown-timeout <duration>
                              How long a graceful stop waits for requests in flight
                              before closing connections; 0 waits for ever.
                              (default: 15s)
      --upstream <host:port>  Run as a caching proxy in front of the transform
                              server at this netstring address; repeat for
                              failover, tried in order.
      --upstream-transforms <names>
                              The transforms to serve, comma-separated, for
                              upstreams that speak only the original protocol
                              (which cannot list them). Default: the upstream's
                              list.
      --cache-bytes <bytes>   The proxy's result cache bound, keys and values
                              counted; 0 disables the cache. (default: 67108864)
      --cache-ttl <duration>  How long the proxy serves a cached result; 0 until
                              evicted. (default: 0)
      --reactors <count>      Serve with this many event loops, one per thread,
                              each accepting on its own SO_REUSEPORT socket per
                              port; auto is one per core. (default: 1)
      --drain-delay <duration>
                              On TERM/INT, answer /readyz with 503 and keep serving
                              this long before the ports close, so load balancers
                              stop sending first. (default: 0s)
      --log-level <level>     The least severe events logged. (values: trace,
                              debug, info, notice, warning, error, critical;
                              default: info)
      --log-format <format>   The log line layout; auto means journal when standard
                              error is the systemd journal. (values: auto, text,
                              journal; default: auto)
      --logfile <path>        Log to this file, rotated by size; - is standard
                              output. Default: standard error, or
                              transform-server.log in the run directory with
                              --daemon.
      --log-max-size <bytes>  Rotate the log file before it passes this size; 0
                              never does. (default: 1000000)
      --log-max-files <count> Keep at most this many rotated log files (1-1000).
                              (default: 5)
      --daemon                Run in the background; the command returns once the
                              server is serving, or fails with the server's error.
      -n, --nodaemon          Run in the foreground (the default); overrides
                              --daemon.
      --pidfile <path>        Write the process id to this file and lock it while
                              running (default: none).
      -u, --user, --uid <user>
                              Switch to this user (name or number) after binding
                              the ports.
      -g, --group, --gid <group>
                              Switch to this group after binding (default: the
                              user's primary group).
      --umask <mask>          The file-mode creation mask, in octal (default:
                              inherited, or 0077 with --daemon).
      --rundir <directory>    Change to this directory before starting; it is
                              created when missing, as are the pidfile's and the
                              log file's directories. (default: .)
      --config <file>         Read options from this file, one 'key = value' per
                              line; the command line wins.
      --version               Show the version.
      -h, --help              Show help information.

    SIGNALS:
      TERM, INT               Stop gracefully: turn unready (/readyz answers 503),
                              after --drain-delay stop listening, finish the
                              requests in flight (up to --shutdown-timeout), close,
                              remove the pidfile, exit 0. A second one exits at
                              once with status 128+signal.
      HUP                     Reopen the log file (after logrotate moved it);
                              re-read --max-concurrent-async from --config.
      USR1                    Rotate the log file now.
      USR2                    Log the server statistics.

    EXIT STATUS:
      0                       Stopped cleanly (including after TERM or INT).
      64                      Bad command line.
      66                      The config file cannot be read.
      67                      Unknown --user or --group.
      70                      Internal error.
      71                      Cannot listen (address in use...) or other system
                              error.
      73                      Cannot create the log file or the pidfile.
      74                      Cannot write the pidfile.
      77                      Permission denied (binding a port, switching user).
      78                      Bad configuration, or already running (the pidfile is
                              locked).
      128+N                   Forced to exit by a second signal N.

    ENVIRONMENT:
      NOTIFY_SOCKET           Readiness (READY=1) and stop (STOPPING=1)
                              notifications for systemd.
      LISTEN_FDS              Listening sockets from systemd, matched by the names
                              netstring, line and http (LISTEN_FDNAMES), else by
                              position.
      JOURNAL_STREAM          Standard error is the journal: log in the journal
                              format.


    """

@Suite("transform-server command line")
struct TransformServerCommandLineTests {
    @Test("--help prints the argument-parser layout with SIGNALS and EXIT STATUS to stdout and exits 0")
    func helpGolden() {
        #expect(invoke(["--help"]) == .exit(status: 0, standardOutput: expectedHelp, standardError: ""))
        #expect(invoke(["-h"]) == .exit(status: 0, standardOutput: expectedHelp, standardError: ""))
    }

    @Test("--help wins over anything else on the command line, even an unknown option")
    func helpWins() {
        #expect(invoke(["--bogus", "--help"]) == .exit(status: 0, standardOutput: expectedHelp, standardError: ""))
    }

    @Test("--help wraps at COLUMNS")
    func helpWrapsAtColumns() {
        guard case .exit(0, let text, _) = invoke(["--help"], environment: ["COLUMNS": "120"]) else {
            Issue.record("help did not exit 0")
            return
        }
        #expect(text != expectedHelp)
        #expect(text.contains("  --netstring-port <port> The netstring port; 0 picks a free port, shown in the log. (default: 10001)\n"))
        #expect(text.split(separator: "\n").allSatisfy { $0.count <= 120 })
    }

    @Test("--version prints the version and exits 0")
    func version() {
        #expect(invoke(["--version"]) == .exit(status: 0, standardOutput: "transform-server 1.0.0\n", standardError: ""))
    }

    @Test("An unknown option is a usage error (64) with argument-parser's message")
    func unknownOption() {
        #expect(
            invoke(["--bogus"])
                == .exit(
                    status: 64, standardOutput: "",
                    standardError: """
                        Error: Unknown option '--bogus'
                        Usage: transform-server [<options>]
                          See 'transform-server --help' for more information.

                        """))
        if case .exit(let status, _, let err) = invoke(["-x"]) {
            #expect(status == 64)
            #expect(err.hasPrefix("Error: Unknown option '-x'\n"))
        } else {
            Issue.record("-x was accepted")
        }
    }

    @Test("A value that is not a number is a usage error naming the option")
    func badValue() {
        #expect(
            invoke(["--netstring-port", "abc"])
                == .exit(
                    status: 64, standardOutput: "",
                    standardError: """
                        Error: The value 'abc' is invalid for '--netstring-port <port>'
                        Help:  --netstring-port <port>  The netstring port; 0 picks a free port, shown in the log.
                        Usage: transform-server [<options>]
                          See 'transform-server --help' for more information.

                        """))
    }

    @Test("A port out of range says which range is allowed")
    func portOutOfRange() {
        guard case .exit(64, "", let err) = invoke(["--line-port=70000"]) else {
            Issue.record("70000 was accepted")
            return
        }
        #expect(err.hasPrefix("Error: The value '70000' is invalid for '--line-port <port>': must be between 0 and 65535\n"))
    }

    @Test("A value outside an enumeration lists the accepted values")
    func badChoice() {
        guard case .exit(64, "", let err) = invoke(["--log-format", "xml"]) else {
            Issue.record("xml was accepted")
            return
        }
        #expect(
            err.hasPrefix(
                "Error: The value 'xml' is invalid for '--log-format <format>'. Please provide one of 'auto', 'text' or 'journal'.\n"
            ))
        guard case .exit(64, "", let level) = invoke(["--log-level", "loud"]) else {
            Issue.record("loud was accepted")
            return
        }
        #expect(level.hasPrefix("Error: The value 'loud' is invalid for '--log-level <level>'. Please provide one of the following:\n"))
    }

    @Test("A missing value is a usage error, also when another option follows")
    func missingValue() {
        let expected = TransformServerInvocation.exit(
            status: 64, standardOutput: "",
            standardError: """
                Error: Missing value for '--pidfile <path>'
                Help:  --pidfile <path>  Write the process id to this file and lock it while running (default: none).
                Usage: transform-server [<options>]
                  See 'transform-server --help' for more information.

                """)
        #expect(invoke(["--pidfile"]) == expected)
        #expect(invoke(["--pidfile", "--daemon"]) == expected)
    }

    @Test("A bad duration explains the accepted forms")
    func badDuration() {
        guard case .exit(64, "", let err) = invoke(["--idle-timeout", "soon"]) else {
            Issue.record("soon was accepted")
            return
        }
        #expect(err.contains("expected a duration such as 30, 1.5, 250ms, 2s or 1m"))
    }

    @Test("A daemon cannot log to standard output")
    func daemonCannotLogToStdout() {
        guard case .exit(64, "", let err) = invoke(["--daemon", "--logfile", "-"]) else {
            Issue.record("--daemon --logfile - was accepted")
            return
        }
        #expect(err.hasPrefix("Error: The value '-' is invalid for '--logfile <path>': a daemon cannot log to standard output\n"))
        #expect(options(["--logfile", "-"])?.logDestination == .standardOutput)
    }

    @Test("Positional arguments are refused")
    func positional() {
        guard case .exit(64, "", let err) = invoke(["serve"]) else {
            Issue.record("a positional argument was accepted")
            return
        }
        #expect(err.hasPrefix("Error: Unexpected argument 'serve'\n"))
    }

    @Test("No options gives the documented defaults: foreground, stderr, no pidfile, both default ports")
    func defaults() {
        let o = options([])
        #expect(o == TransformServerOptions())
        #expect(o?.interface == "127.0.0.1")
        #expect(o?.netstringPort == 10001 && o?.linePort == 10002)
        #expect(o?.limits == ServerLimits())
        #expect(o?.shutdownTimeout == .seconds(15))
        #expect(o?.logDestination == .standardError)
        #expect(o?.pidfile == nil && o?.rundir == nil && o?.umask == nil && !(o?.daemon ?? true))
    }

    @Test("Every option is parsed into its typed value")
    func everyOption() throws {
        let o = try #require(
            options([
                "--iface", "::1", "--netstring-port", "0", "--line-port", "0", "--max-request-bytes", "10",
                "--max-line-length", "20", "--idle-timeout", "0", "--max-connections", "3", "--shutdown-timeout",
                "250ms", "--log-level", "debug", "--log-format", "journal", "--logfile", "log/x.log",
                "--log-max-size", "500", "--log-max-files", "2", "--pidfile", "run/x.pid", "-u", "nobody", "--gid",
                "nogroup", "--umask", "027", "--rundir", "/var/lib/xform",
            ]))
        #expect(o.interface == "::1")
        #expect(o.netstringPort == 0 && o.linePort == 0)
        #expect(o.limits.maxRequestBytes == 10 && o.limits.maxLineLength == 20 && o.limits.maxConnections == 3)
        #expect(o.limits.idleTimeout == nil)
        #expect(o.shutdownTimeout == .milliseconds(250))
        #expect(o.logLevel == .debug && o.logFormat == .journal)
        #expect(o.logDestination == .file("/srv/xform/log/x.log"))
        #expect(o.logMaxSize == 500 && o.logMaxFiles == 2)
        #expect(o.pidfile == "/srv/xform/run/x.pid")
        #expect(o.user == "nobody" && o.group == "nogroup")
        #expect(o.umask == 0o027)
        #expect(o.rundir == "/var/lib/xform")
        #expect(options(["--shutdown-timeout", "0"])?.shutdownTimeout == nil)
        #expect(options(["--uid", "65534", "-g", "65534"])?.user == "65534")
    }

    @Test("--max-concurrent-async takes a count, 0 included, from the command line or the config file")
    func maxConcurrentAsync() {
        #expect(options([])?.maxConcurrentAsync == nil)
        #expect(options(["--max-concurrent-async", "0"])?.maxConcurrentAsync == 0)
        #expect(options(["--max-concurrent-async", "-1"]) == nil)
        let files = ["x.conf": "max-concurrent-async = 5\n"]
        #expect(options(["--config", "x.conf"], files: files)?.maxConcurrentAsync == 5)
        #expect(options(["--config", "x.conf", "--max-concurrent-async", "2"], files: files)?.maxConcurrentAsync == 2)
        #expect(TransformServerCommand.defaultMaxConcurrentAsync >= 4)
    }

    @Test("SIGHUP's reload takes the async limit from the re-read options and keeps it when they fail")
    func reloadAsyncLimit() throws {
        let log = InMemoryLogHandler(minimumLevel: .debug)
        let logger = Logger(system: "test", handler: log)
        var o = TransformServerOptions()
        o.maxConcurrentAsync = 9
        #expect(TransformServerRunner.reloadedAsyncLimit(current: 3, from: .success(o), logger: logger) == 9)
        #expect(TransformServerRunner.reloadedAsyncLimit(current: 9, from: .success(o), logger: logger) == nil)
        #expect(
            TransformServerRunner.reloadedAsyncLimit(
                current: 9, from: .failure(.configFileUnreadable(path: "/x", reason: "gone")), logger: logger) == nil)
        o.maxConcurrentAsync = nil
        #expect(
            TransformServerRunner.reloadedAsyncLimit(current: 9, from: .success(o), logger: logger)
                == TransformServerCommand.defaultMaxConcurrentAsync)
    }

    @Test("--reactors N splits the async limit (at least 1 a loop) and the pending-bytes budget between the loops")
    func asyncShares() {
        let two = SharedLoopLimits(loops: 2, maxConnections: 10, asyncLimit: 3)
        #expect([0, 1].map { two.asyncShare(of: 3, loop: $0) } == [2, 1])
        #expect([0, 1].map { two.asyncShare(of: 8, loop: $0) } == [4, 4])
        #expect([0, 1].map { two.asyncShare(of: 0, loop: $0) } == [0, 0])
        #expect([0, 1].map { two.asyncShare(of: 1, loop: $0) } == [1, 1])
        #expect(two.budgets?.count == ServerPort.allCases.count && two.drain != nil)
        var limits = ServerLimits()
        limits.maxPendingBytesTotal = 64 << 20
        #expect(two.loopLimits(limits).maxPendingBytesTotal == 32 << 20)
        #expect(two.loopLimits(limits).maxPendingBytesPerConnection == limits.maxPendingBytesPerConnection)
        let one = SharedLoopLimits(loops: 1, maxConnections: 10, asyncLimit: 5)
        #expect(one.asyncShare(of: 5, loop: 0) == 5 && one.budgets == nil && one.drain == nil)
        #expect(one.loopLimits(limits).maxPendingBytesTotal == 64 << 20)
    }

    @Test("The HTTP port is off unless given, and the drain delay is 0 unless given")
    func httpPortAndDrainDelay() {
        #expect(options([])?.httpPort == nil)
        #expect(options([])?.drainDelay == .zero)
        let o = options(["--http-port", "10003", "--drain-delay", "3s"])
        #expect(o?.httpPort == 10003)
        #expect(o?.drainDelay == .seconds(3))
        #expect(options(["--http-port", "0"])?.httpPort == 0)
        #expect(options(["--http-port", "65536"]) == nil)
    }

    @Test("Relative paths are resolved against the starting directory, before any chdir")
    func pathsAreAbsolute() {
        let o = options(["--pidfile", "x.pid", "--logfile", "../logs/x.log", "--rundir", "run"], cwd: "/home/a")
        #expect(o?.pidfile == "/home/a/x.pid")
        #expect(o?.logDestination == .file("/home/a/../logs/x.log"))
        #expect(o?.rundir == "/home/a/run")
        #expect(options(["--pidfile", ""])?.pidfile == nil)
    }

    @Test("With --daemon the log defaults to transform-server.log in the run directory")
    func daemonDefaultLog() {
        #expect(options(["--daemon"])?.logDestination == .file("/srv/xform/transform-server.log"))
        #expect(options(["--daemon", "--rundir", "/var/run"])?.logDestination == .file("/var/run/transform-server.log"))
        #expect(options(["--daemon"])?.daemon == true)
    }

    @Test("-n (--nodaemon) is accepted and overrides --daemon")
    func nodaemon() {
        #expect(options(["-n"])?.daemon == false)
        #expect(options(["--daemon", "-n"])?.daemon == false)
        #expect(options(["--daemon", "-n"])?.logDestination == .standardError)
    }
}

@Suite("transform-server config file")
struct TransformServerConfigFileTests {
    let path = "/etc/xform/server.conf"

    @Test("Every option can come from the config file; the command line wins")
    func precedence() {
        let files = [
            path: """
            # transform-server settings
            netstring-port = 2000
            line-port = 3000
            iface = 127.0.0.2
            idle-timeout = 5s
            daemon = no
            logfile = "/var/log/xform.log"
            """
        ]
        let o = options(["--config", path, "--line-port", "4000"], files: files)
        #expect(o?.netstringPort == 2000)
        #expect(o?.linePort == 4000)
        #expect(o?.interface == "127.0.0.2")
        #expect(o?.limits.idleTimeout == .seconds(5))
        #expect(o?.daemon == false)
        #expect(o?.logDestination == .file("/var/log/xform.log"))
    }

    @Test("An unknown key is a configuration error (78) naming the file and line")
    func unknownKey() {
        #expect(
            invoke(["--config", path], files: [path: "line-port = 1\nbogus = 2\n"])
                == .exit(status: 78, standardOutput: "", standardError: "Error: /etc/xform/server.conf:2: Unknown key 'bogus'\n"))
    }

    @Test("A bad value in the config file is a configuration error naming the line, not a usage error")
    func badValueInFile() {
        #expect(
            invoke(["--config", path], files: [path: "\n\nnetstring-port = many\n"])
                == .exit(
                    status: 78, standardOutput: "",
                    standardError: "Error: /etc/xform/server.conf:3: The value 'many' is invalid for 'netstring-port'\n"))
    }

    @Test("The config option cannot appear in the config file")
    func configNotConfigurable() {
        guard case .exit(78, "", let err) = invoke(["--config", path], files: [path: "config = /other\n"]) else {
            Issue.record("config in a config file was accepted")
            return
        }
        #expect(err == "Error: /etc/xform/server.conf:1: Unknown key 'config'\n")
    }

    @Test("A config file that cannot be read exits 66")
    func unreadable() {
        #expect(
            invoke(["--config", "/nope.conf"])
                == .exit(
                    status: 66, standardOutput: "",
                    standardError: "Error: Cannot read config file '/nope.conf': No such file or directory\n"))
    }

    @Test("A daemon set up in the config file still cannot log to standard output")
    func daemonFromFile() {
        guard case .exit(78, "", let err) = invoke(["--config", path], files: [path: "daemon = yes\nlogfile = -\n"]) else {
            Issue.record("accepted")
            return
        }
        #expect(err.contains("server.conf:2:"))
        #expect(err.contains("a daemon cannot log to standard output"))
    }
}

@Suite("transform-server bind failures")
struct TransformServerBindFailureTests {
    @Test("Address in use exits 71, permission denied 77, an address this host lacks 78")
    func listenFailures() {
        let inUse = TransformServerRunner.listenFailure(
            "netstring", place: "127.0.0.1:1", error: SystemError("bind", errno: EADDRINUSE))
        #expect(inUse.exitStatus == .osError)
        #expect(inUse.message.hasPrefix("cannot listen for netstring requests on 127.0.0.1:1: bind: Address already in use"))
        #expect(
            TransformServerRunner.listenFailure("line", place: "x", error: SystemError("bind", errno: EACCES))
                .exitStatus == .noPermission)
        #expect(
            TransformServerRunner.listenFailure("line", place: "x", error: SystemError("bind", errno: EADDRNOTAVAIL))
                .exitStatus == .configuration)
    }
}

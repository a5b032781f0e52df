import Testing
import XformCommands
import XformDaemon

/// `xform --help`, pinned: a change here is a change to the user interface (and the README).
let expectedXformHelp = """
OVERVIEW: Transform text with a transform server.

Reads standard input when no file is given and prints exactly the transformed
text, with no newline added. Several files are transformed concurrently and
printed in argument order. Transient failures (connection refused or lost,
timeouts, a server shutting down) are retried with exponential backoff;
definitive ones (an unknown transform, a refused request) fail at once.

USAGE: xform [<options>] <transform> [<file> ...]
       xform [<options>] --list

ARGUMENTS:
  <transform>             The transform to apply (see --list).
  <file>                  Files to transform (standard input when none is
                          given).

OPTIONS:
  --host <host>           The server's host name or address. (default:
                          127.0.0.1)
  -p, --port <port>       The server's port (default: 10001, the netstring
                          port; 10002 with --line).
  --line                  Speak the line protocol instead of the netstring
                          protocol.
  -t, --timeout <duration>
                          How long each attempt waits for its reply (30, 1.5,
                          250ms, 2s, 1m). (default: 30s)
  --retries <n>           How many times a transient failure is retried.
                          (default: 9)
  --no-retry              Do not retry: the same as --retries 0.
  --list                  List the server's transforms, one per line, and exit.
  -j, --jobs <n>          How many files are in flight at once. (default: 8)
  --progress              Show a progress line on standard error (default: when
                          it is a terminal and there are several files).
  --no-progress           Never show the progress line.
  -h, --help              Show help information.

EXIT STATUS:
  0                       Success.
  1                       The transform failed on the server.
  64 (EX_USAGE)           The command line is wrong.
  65 (EX_DATAERR)         The input is not UTF-8, or the server refused the
                          request: unknown transform, bad request, too large.
  66 (EX_NOINPUT)         An input file cannot be read.
  69 (EX_UNAVAILABLE)     The server cannot be reached (refused, unknown host,
                          connection lost) after the retries.
  71 (EX_OSERR)           The event loop cannot be created.
  74 (EX_IOERR)           Standard output cannot be written.
  75 (EX_TEMPFAIL)        No reply within the timeout, or the server is
                          shutting down.
  76 (EX_PROTOCOL)        The server broke the protocol, or an
                          original-protocol server closed the connection
                          without a reply.
"""

@Suite("xform command", .timeLimit(.minutes(1)))
struct XformCommandTests {
    @Test("--help prints the pinned help text to stdout and exits 0")
    func help() {
        let r = runXform(["--help"])
        #expect(r.status == 0)
        #expect(r.stdout == expectedXformHelp + "\n\n")
        #expect(r.stderr.isEmpty)
    }

    @Test("Usage errors print argument-parser's error text and exit 64")
    func usageErrors() {
        let unknown = runXform(["--bogus", "upper"])
        #expect(unknown.status == 64)
        #expect(
            unknown.stderr == """
                Error: Unknown option '--bogus'
                Usage: xform [<options>] <transform> [<file> ...]
                       xform [<options>] --list
                  See 'xform --help' for more information.

                """)
        let badPort = runXform(["--port", "70000", "upper"])
        #expect(badPort.status == 64)
        #expect(badPort.stderr.hasPrefix("Error: The value '70000' is invalid for '--port <port>'"))
        let missing = runXform(["--line"])
        #expect(missing.status == 64)
        #expect(missing.stderr.hasPrefix("Error: Missing expected argument '<transform>'\n"))
        let listExtra = runXform(["--list", "upper"])
        #expect(listExtra.status == 64)
        #expect(listExtra.stderr.hasPrefix("Error: Unexpected argument 'upper'\n"))
        let empty = runXform([])
        #expect(empty.status == 64)
        #expect(empty.stderr == "Error: Missing expected argument '<transform>'\n\n" + expectedXformHelp + "\n\n")
    }

    @Test("A server that is not there: one clear line on stderr, exit 69")
    func unreachable() {
        let port = unusedPort()
        let r = runXform(["--port", "\(port)", "--retries", "2", "upper"], stdin: Array("x".utf8))
        #expect(r.status == 69)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr == "xform: cannot reach the server at 127.0.0.1:\(port): connection refused\n")
    }

    @Test("A missing input file exits 66, input that is not UTF-8 exits 65, and neither is sent")
    func badInput() {
        let port = unusedPort()
        let missing = runXform(["--port", "\(port)", "upper", "nope.txt"])
        #expect(missing.status == 66)
        #expect(missing.stderr == "xform: cannot read 'nope.txt': No such file or directory\n")
        let binary = runXform(["--port", "\(port)", "upper"], stdin: [0xff, 0xfe])
        #expect(binary.status == 65)
        #expect(binary.stderr == "xform: the input is not valid UTF-8\n")
    }

    @Test("Against a real server: exact output without added newline, files in argument order, errors per file")
    func realServer() throws {
        let server = try XformTestServer()
        defer { server.stop() }
        let port = "\(server.netstringPort)"
        let one = runXform(["-p", port, "cummingsify"], stdin: Array("HERE IS MY POEM".utf8))
        #expect(one.status == 0)
        #expect(one.stdout == "here is my poem")
        #expect(one.stderr.isEmpty)

        let files: [String: [UInt8]] = ["a": Array("AAA\n".utf8), "b": Array("bbb".utf8), "c": Array("C".utf8)]
        let many = runXform(["-p", port, "reverse", "a", "b", "missing", "c"], files: files)
        #expect(many.stdout == "\nAAAbbbC")
        #expect(many.stderr == "xform: cannot read 'missing': No such file or directory\n")
        #expect(many.status == 66)

        let unknown = runXform(["-p", port, "nosuch"], stdin: Array("x".utf8))
        #expect(unknown.status == 65)
        #expect(unknown.stdout.isEmpty)
        #expect(unknown.stderr == "xform: unknown transform 'nosuch' (see 'xform --list')\n")

        let list = runXform(["-p", port, "--list"])
        #expect(list.status == 0)
        #expect(list.stdout.split(separator: "\n").contains("cummingsify"))
        #expect(list.stdout.hasSuffix("\n"))
    }

    @Test("--line speaks the line protocol to the line port")
    func lineProtocol() throws {
        let server = try XformTestServer()
        defer { server.stop() }
        let r = runXform(["--line", "-p", "\(server.linePort)", "upper"], stdin: Array("multi\nline\n".utf8))
        #expect(r.status == 0)
        #expect(r.stdout == "MULTI\nLINE\n")
        let list = runXform(["--line", "-p", "\(server.linePort)", "--list"])
        #expect(list.stdout.split(separator: "\n").contains("upper"))
    }
}

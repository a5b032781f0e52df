import Testing

@testable import XformDaemon

@Suite("Config files")
struct ConfigFileTests {
    func parse(_ args: [String], file: String) throws(CommandLineError) -> ParsedCommand {
        try serverSpec.parse(args) { (path) throws(CommandLineError) in
            guard path == "/etc/xform.conf" else { throw .configFileUnreadable(path: path, reason: "No such file or directory") }
            return file
        }
    }

    @Test("Config values fill options the command line did not give; the command line wins")
    func precedence() throws {
        let file = """
            # transform-server configuration
            line-port = 2000

              netstring-port=3000
            iface = 0.0.0.0
            daemon = yes
            allow = upper
            allow = rot13
            """
        let p = try parse(["--config", "/etc/xform.conf", "--line-port", "1000", "--allow", "title"], file: file)
        #expect(p.string("line-port") == "1000")
        #expect(p.origin(of: "line-port") == .commandLine)
        #expect(p.string("netstring-port") == "3000")
        #expect(p.origin(of: "netstring-port") == .configFile(path: "/etc/xform.conf", line: 4))
        #expect(p.string("interface") == "0.0.0.0")
        #expect(p.flag("daemon"))
        #expect(p.strings("allow") == ["title"])
        #expect(p.string("log-level") == "info")
    }

    @Test("Repeatable keys collect, quotes keep spaces, and false flags stay off")
    func values() throws {
        let file = "allow = upper\nallow = rot13\npidfile = \" /tmp/a b \"\ndaemon = off\numask =\n"
        let p = try parse(["--config=/etc/xform.conf"], file: file)
        #expect(p.strings("allow") == ["upper", "rot13"])
        #expect(p.string("pidfile") == " /tmp/a b ")
        #expect(!p.flag("daemon"))
        #expect(p.wasGiven("daemon"))
        #expect(p.string("umask") == "")
    }

    @Test("Unknown keys are errors that name the file and line, exit 78")
    func unknownKey() throws {
        var caught: CommandLineError?
        do { _ = try parse(["--config", "/etc/xform.conf"], file: "# c\n\nline-port = 1\nbogus = 2\n") } catch { caught = error }
        let error = try #require(caught)
        #expect(error == .configFile(path: "/etc/xform.conf", line: 4, message: "Unknown key 'bogus'"))
        #expect(error.exitStatus == .configuration)
        #expect(serverSpec.errorText(for: error) == "Error: /etc/xform.conf:4: Unknown key 'bogus'\n")
    }

    @Test(
        "Malformed lines, duplicates, hidden keys and bad flag or enum values name their line",
        arguments: [
            ("line-port 5", 1, "Expected 'key = value', found 'line-port 5'"),
            ("= 5", 1, "Missing key before '='"),
            ("line-port = 1\nline-port = 2", 2, "Duplicate key 'line-port' (first set on line 1)"),
            ("secret = x", 1, "Unknown key 'secret'"),
            ("config = /x", 1, "Unknown key 'config'"),
            ("\n\ndaemon = maybe", 3, "The value 'maybe' is invalid for 'daemon': expected true or false"),
            ("log-format = xml", 1, "The value 'xml' is invalid for 'log-format'. Please provide one of 'text' and 'journal'."),
        ])
    func malformed(file: String, line: Int, message: String) {
        #expect(throws: CommandLineError.configFile(path: "/etc/xform.conf", line: line, message: message)) {
            try parse(["--config", "/etc/xform.conf"], file: file)
        }
    }

    @Test("A typed accessor names the config line a bad value came from")
    func typedErrorFromConfig() throws {
        let p = try parse(["--config", "/etc/xform.conf"], file: "\nline-port = http\n")
        #expect(throws: CommandLineError.configFile(path: "/etc/xform.conf", line: 2, message: "The value 'http' is invalid for 'line-port'")) {
            try p.int("line-port", in: 0...65535)
        }
    }

    @Test("An unreadable config file exits 66 (EX_NOINPUT)")
    func unreadable() throws {
        var caught: CommandLineError?
        do { _ = try parse(["--config", "/nope.conf"], file: "") } catch { caught = error }
        let error = try #require(caught)
        #expect(error.exitStatus == .noInput)
        #expect(serverSpec.errorText(for: error) == "Error: Cannot read config file '/nope.conf': No such file or directory\n")
        #expect(throws: CommandLineError.configFileUnreadable(path: "/nonexistent/xform.conf", reason: "No such file or directory")) {
            try CommandSpec.readConfigFile("/nonexistent/xform.conf")
        }
    }
}

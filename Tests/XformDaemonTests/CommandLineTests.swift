import Testing

@testable import XformDaemon

/// swift-argument-parser's `repeat` example, declared with our spec, to pin the layout against
/// argument-parser's own golden tests (RepeatExampleTests).
let repeatSpec = CommandSpec(
    name: "repeat", overview: "",
    arguments: [ArgumentSpec("phrase", help: "The phrase to repeat.")],
    options: [
        .option("count", help: "How many times to repeat 'phrase'."),
        .flag("include-counter", help: "Include a counter with each repetition."),
    ])

/// A server-like spec with many options, aliases, enums, defaults and extra sections.
let serverSpec = CommandSpec(
    name: "transform-server",
    overview: "Serves text transforms over netstring and line protocols.",
    options: [
        .option("netstring-port", valueName: "port", help: "The netstring port; 0 picks a free one.", default: "10001"),
        .option("line-port", valueName: "port", help: "The line-protocol port.", default: "10002"),
        .option("interface", aliases: ["iface"], valueName: "address", help: "The address to listen on.", default: "127.0.0.1"),
        .option("idle-timeout", valueName: "duration", help: "Close connections idle this long.", default: "30s"),
        .option("log-format", valueName: "format", help: "How log lines look.", values: ["text", "journal"]),
        .option("log-level", valueName: "level", help: "The least severe level logged.", default: "info"),
        .option("umask", valueName: "mask", help: "The file-mode creation mask."),
        .option("user", short: "u", aliases: ["uid"], valueName: "user", help: "Run as this user after binding."),
        .option("allow", valueName: "transform", help: "Serve only this transform.", repeatable: true),
        .option("config", valueName: "file", help: "Read options from this file.", configurable: false),
        .option("pidfile", valueName: "path", help: "Write the pid here."),
        .flag("daemon", help: "Run in the background."),
        .flag("nodaemon", short: "n", help: "Run in the foreground (the default)."),
        .flag("verbose", short: "v", help: "Log more."),
        .option("secret", help: "Hidden.", hidden: true),
    ],
    sections: [
        HelpSection(
            "Signals",
            [
                .item("TERM, INT", "Stop gracefully: finish in-flight requests, then exit 0."),
                .item("HUP", "Reopen the log file."),
            ]),
        HelpSection("Exit status", [.paragraph("0 on a clean stop; sysexits codes (64-78) otherwise.")]),
    ],
    version: "1.0.0")

@Suite("Help rendering")
struct HelpRenderingTests {
    @Test("Help for argument-parser's repeat example matches argument-parser's golden text")
    func repeatHelp() throws {
        let expected = """
            USAGE: repeat [--count <count>] [--include-counter] <phrase>

            ARGUMENTS:
              <phrase>                The phrase to repeat.

            OPTIONS:
              --count <count>         How many times to repeat 'phrase'.
              --include-counter       Include a counter with each repetition.
              -h, --help              Show help information.


            """
        #expect(repeatSpec.errorText(for: .helpRequested, columns: 80) == expected)
        #expect(throws: CommandLineError.helpRequested) { try repeatSpec.parse(["-h"]) }
        #expect(throws: CommandLineError.helpRequested) { try repeatSpec.parse(["hello", "--help"]) }
        #expect(CommandLineError.helpRequested.exitStatus == .success)
    }

    @Test("Server help shows defaults, values, aliases, version, and extra sections at 80 columns")
    func serverHelp() {
        let expected = """
            OVERVIEW: Serves text transforms over netstring and line protocols.

            USAGE: transform-server [<options>]

            OPTIONS:
              --netstring-port <port> The netstring port; 0 picks a free one. (default:
                                      10001)
              --line-port <port>      The line-protocol port. (default: 10002)
              --interface, --iface <address>
                                      The address to listen on. (default: 127.0.0.1)
              --idle-timeout <duration>
                                      Close connections idle this long. (default: 30s)
              --log-format <format>   How log lines look. (values: text, journal)
              --log-level <level>     The least severe level logged. (default: info)
              --umask <mask>          The file-mode creation mask.
              -u, --user, --uid <user>
                                      Run as this user after binding.
              --allow <transform>     Serve only this transform.
              --config <file>         Read options from this file.
              --pidfile <path>        Write the pid here.
              --daemon                Run in the background.
              -n, --nodaemon          Run in the foreground (the default).
              -v, --verbose           Log more.
              --version               Show the version.
              -h, --help              Show help information.

            SIGNALS:
              TERM, INT               Stop gracefully: finish in-flight requests, then exit
                                      0.
              HUP                     Reopen the log file.

            EXIT STATUS:
              0 on a clean stop; sysexits codes (64-78) otherwise.

            """
        #expect(serverSpec.helpText(columns: 80) == expected)
    }

    @Test("A narrower COLUMNS wraps the help text at that width")
    func narrowColumns() {
        let columns = HelpFormatter.columns(environment: ["COLUMNS": "50"])
        #expect(columns == 50)
        let text = serverSpec.helpText(columns: columns)
        #expect(text.hasPrefix("OVERVIEW: Serves text transforms over netstring\nand line protocols.\n"))
        for line in text.split(separator: "\n") where !line.contains("<") {
            #expect(line.count <= 50, "line too long: \(line)")
        }
    }

    @Test("COLUMNS that is unset, not a number, or too small falls back to 80")
    func columnsFallback() {
        #expect(HelpFormatter.columns(environment: [:]) == 80)
        #expect(HelpFormatter.columns(environment: ["COLUMNS": "wide"]) == 80)
        #expect(HelpFormatter.columns(environment: ["COLUMNS": "5"]) == 80)
        #expect(HelpFormatter.columns(environment: ["COLUMNS": "120"]) == 120)
    }

    @Test("--version prints the version and exits 0")
    func version() {
        #expect(throws: CommandLineError.versionRequested) { try serverSpec.parse(["--version"]) }
        #expect(serverSpec.errorText(for: .versionRequested) == "1.0.0\n")
        #expect(throws: CommandLineError.unknownOption("--version")) { try repeatSpec.parse(["--version", "hello"]) }
    }
}

@Suite("Command-line error formats")
struct CommandLineErrorFormatTests {
    func failure(_ spec: CommandSpec, _ args: [String]) -> CommandLineError? {
        do {
            _ = try spec.parse(args)
            return nil
        } catch {
            return error
        }
    }

    @Test("A missing value prints the error, a Help line, usage and the hint, exit 64")
    func missingValue() throws {
        let error = try #require(failure(repeatSpec, ["hello", "--count"]))
        #expect(error == .missingValue(option: "count"))
        #expect(error.exitStatus == .usage)
        #expect(
            repeatSpec.errorText(for: error) == """
                Error: Missing value for '--count <count>'
                Help:  --count <count>  How many times to repeat 'phrase'.
                Usage: repeat [--count <count>] [--include-counter] <phrase>
                  See 'repeat --help' for more information.

                """)
    }

    @Test("An invalid value names the option with its value placeholder, exit 64")
    func invalidValue() throws {
        let parsed = try repeatSpec.parse(["hello", "--count", "ZZZ"])
        var caught: CommandLineError?
        do { _ = try parsed.int("count", in: 1...100) } catch { caught = error }
        let error = try #require(caught)
        #expect(error.exitStatus == .usage)
        #expect(
            repeatSpec.errorText(for: error) == """
                Error: The value 'ZZZ' is invalid for '--count <count>'
                Help:  --count <count>  How many times to repeat 'phrase'.
                Usage: repeat [--count <count>] [--include-counter] <phrase>
                  See 'repeat --help' for more information.

                """)
    }

    @Test("An unknown option prints the error, usage and the hint, exit 64")
    func unknownOption() throws {
        let error = try #require(failure(serverSpec, ["--bogus"]))
        #expect(error == .unknownOption("--bogus"))
        #expect(error.exitStatus == .usage)
        #expect(
            serverSpec.errorText(for: error) == """
                Error: Unknown option '--bogus'
                Usage: transform-server [<options>]
                  See 'transform-server --help' for more information.

                """)
        #expect(failure(serverSpec, ["-x"]) == .unknownOption("-x"))
        #expect(failure(serverSpec, ["--bogus=3"]) == .unknownOption("--bogus"))
    }

    @Test("A missing argument after other arguments prints usage; with no arguments, the full help")
    func missingArgument() throws {
        let spec = CommandSpec(
            name: "xform", overview: "Transforms text.",
            arguments: [
                ArgumentSpec("transform", help: "The transform to apply."),
                ArgumentSpec("text", help: "The text; stdin when absent.", optional: true),
            ],
            options: [.option("port", help: "The server port.", default: "10001")])
        let some = try #require(failure(spec, ["--port", "5"]))
        #expect(some == .missingArgument("transform", noArguments: false))
        #expect(
            spec.errorText(for: some) == """
                Error: Missing expected argument '<transform>'
                Usage: xform [--port <port>] <transform> [<text>]
                  See 'xform --help' for more information.

                """)
        let none = try #require(failure(spec, []))
        #expect(none.exitStatus == .usage)
        #expect(
            spec.errorText(for: none) == """
                Error: Missing expected argument '<transform>'

                OVERVIEW: Transforms text.

                USAGE: xform [--port <port>] <transform> [<text>]

                ARGUMENTS:
                  <transform>             The transform to apply.
                  <text>                  The text; stdin when absent.

                OPTIONS:
                  --port <port>           The server port. (default: 10001)
                  -h, --help              Show help information.


                """)
    }

    @Test("An enumerated option lists the accepted values when given another")
    func enumeratedValue() throws {
        let error = try #require(failure(serverSpec, ["--log-format", "xml"]))
        #expect(error == .invalidValue(value: "xml", option: "log-format", reason: nil))
        #expect(
            serverSpec.errorText(for: error).hasPrefix(
                "Error: The value 'xml' is invalid for '--log-format <format>'. Please provide one of 'text' and 'journal'.\nHelp:  --log-format <format>  How log lines look.\n"
            ))
    }

    @Test("Extra positionals and values given to flags are usage errors")
    func unexpected() throws {
        #expect(failure(repeatSpec, ["a", "b"]) == .unexpectedArguments(["b"]))
        #expect(failure(repeatSpec, ["a", "b", "c"]) == .unexpectedArguments(["b", "c"]))
        #expect(repeatSpec.errorText(for: .unexpectedArguments(["b", "c"])).hasPrefix("Error: 2 unexpected arguments: 'b', 'c'\n"))
        let flagValue = try #require(failure(serverSpec, ["--daemon=yes"]))
        #expect(flagValue == .unexpectedValue(option: "--daemon", value: "yes"))
        #expect(
            serverSpec.errorText(for: flagValue).hasPrefix(
                "Error: The option '--daemon' does not take any value, but 'yes' was specified.\n"))
        #expect(flagValue.exitStatus == .usage)
    }
}

@Suite("Option parsing shapes")
struct OptionParsingTests {
    @Test("--opt value and --opt=value give the same value")
    func longForms() throws {
        #expect(try serverSpec.parse(["--line-port", "7"]).string("line-port") == "7")
        #expect(try serverSpec.parse(["--line-port=7"]).string("line-port") == "7")
        #expect(try serverSpec.parse(["--line-port="]).string("line-port") == "")
        #expect(try serverSpec.parse(["--interface=a=b"]).string("interface") == "a=b")
    }

    @Test("Short aliases take values attached or separate, and group as flags")
    func shortForms() throws {
        #expect(try serverSpec.parse(["-u", "nobody"]).string("user") == "nobody")
        #expect(try serverSpec.parse(["-unobody"]).string("user") == "nobody")
        let grouped = try serverSpec.parse(["-nv"])
        #expect(grouped.flag("nodaemon") && grouped.flag("verbose"))
        let flagThenValue = try serverSpec.parse(["-vu", "root"])
        #expect(flagThenValue.flag("verbose") && flagThenValue.string("user") == "root")
    }

    @Test("Long aliases set the main option")
    func aliases() throws {
        #expect(try serverSpec.parse(["--iface", "0.0.0.0"]).string("interface") == "0.0.0.0")
        #expect(try serverSpec.parse(["--uid=5"]).string("user") == "5")
    }

    @Test("Absent options give their default, absent flags are false")
    func defaults() throws {
        let p = try serverSpec.parse([])
        #expect(p.string("netstring-port") == "10001")
        #expect(p.origin(of: "netstring-port") == .defaultValue)
        #expect(p.string("pidfile") == nil)
        #expect(p.origin(of: "pidfile") == nil)
        #expect(!p.flag("daemon"))
        #expect(!p.wasGiven("netstring-port"))
    }

    @Test("A repeated option keeps every value; a single one keeps the last")
    func repeated() throws {
        let p = try serverSpec.parse(["--allow", "upper", "--allow=rot13", "--line-port", "1", "--line-port", "2"])
        #expect(p.strings("allow") == ["upper", "rot13"])
        #expect(p.string("line-port") == "2")
        #expect(p.origin(of: "line-port") == .commandLine)
    }

    @Test("Positionals may come anywhere, and -- ends options")
    func positionals() throws {
        let spec = CommandSpec(
            name: "xform", overview: "",
            arguments: [ArgumentSpec("transform", help: ""), ArgumentSpec("text", help: "", optional: true)],
            options: [.option("port", help: ""), .flag("no-retry", help: "")])
        let p = try spec.parse(["upper", "--port", "1", "--", "--no-retry"])
        #expect(p.argument("transform") == "upper")
        #expect(p.argument("text") == "--no-retry")
        #expect(!p.flag("no-retry"))
        #expect(try spec.parse(["upper"]).argument("text") == nil)
        #expect(try spec.parse(["upper", "-"]).argument("text") == "-")
        #expect(try spec.parse(["--", "-h"]).argument("transform") == "-h")
    }

    @Test("A repeating argument takes all remaining positionals")
    func repeating() throws {
        let spec = CommandSpec(
            name: "cat", overview: "", arguments: [ArgumentSpec("files", help: "", repeating: true)])
        #expect(try spec.parse(["a", "b", "c"]).arguments("files") == ["a", "b", "c"])
        #expect(throws: CommandLineError.missingArgument("files", noArguments: true)) { try spec.parse([]) }
        #expect(spec.usageSynopsis == "cat <files> ...")
    }

    @Test("A value may be a negative number or a lone dash, but not another option")
    func valueLookahead() throws {
        #expect(try serverSpec.parse(["--line-port", "-1"]).string("line-port") == "-1")
        #expect(try serverSpec.parse(["--pidfile", "-"]).string("pidfile") == "-")
        #expect(throws: CommandLineError.missingValue(option: "pidfile")) { try serverSpec.parse(["--pidfile", "--daemon"]) }
        #expect(throws: CommandLineError.missingValue(option: "user")) { try serverSpec.parse(["-u"]) }
    }

    @Test("Integer accessors enforce ranges with a reason")
    func integers() throws {
        let p = try serverSpec.parse(["--line-port", "70000"])
        #expect(throws: CommandLineError.invalidValue(value: "70000", option: "line-port", reason: "must be between 0 and 65535")) {
            try p.int("line-port", in: 0...65535)
        }
        #expect(try serverSpec.parse(["--line-port", "80"]).int("line-port", in: 0...65535) == 80)
        #expect(try p.int("netstring-port", in: 0...65535) == 10001)
        #expect(try p.int("pidfile") == nil)
    }

    @Test("Enum and umask accessors parse their values")
    func typed() throws {
        enum Format: String { case text, journal }
        let p = try serverSpec.parse(["--log-format", "journal", "--umask", "027", "--idle-timeout", "250ms"])
        #expect(try p.choice("log-format", as: Format.self) == .journal)
        #expect(try p.umask("umask") == 0o027)
        #expect(try p.duration("idle-timeout") == .milliseconds(250))
        #expect(try serverSpec.parse([]).duration("idle-timeout") == .seconds(30))
        let bad = try serverSpec.parse(["--umask", "999"])
        #expect(throws: CommandLineError.invalidValue(value: "999", option: "umask", reason: "expected an octal mask such as 022 or 0077")) {
            try bad.umask("umask")
        }
    }
}

@Suite("Value parsers")
struct ValueParserTests {
    @Test(
        "Durations accept seconds, fractions and ms/s/m/h units exactly",
        arguments: [
            ("30", Duration.seconds(30)), ("1.5", .milliseconds(1500)), ("250ms", .milliseconds(250)),
            ("2s", .seconds(2)), ("1m", .seconds(60)), ("0", .zero), ("0.1", .milliseconds(100)),
            ("1.5ms", .microseconds(1500)), ("2h", .seconds(7200)), ("0.000000001", .nanoseconds(1)),
        ])
    func durations(text: String, expected: Duration) throws {
        #expect(try ValueParsers.duration(text) == expected)
    }

    @Test("Malformed durations are rejected", arguments: ["", "s", "-1", "1.", ".", "1x", "1 s", "abc", "99999999999999999999"])
    func badDurations(text: String) {
        #expect(throws: ValueParseError.self) { try ValueParsers.duration(text) }
    }

    @Test("Umasks are octal and at most 0777")
    func umasks() throws {
        #expect(try ValueParsers.umask("022") == 0o22)
        #expect(try ValueParsers.umask("0077") == 0o77)
        #expect(try ValueParsers.umask("0o27") == 0o27)
        #expect(try ValueParsers.umask("0") == 0)
        for bad in ["", "8", "0888", "1000", "-1", "+7", "0o"] {
            #expect(throws: ValueParseError.self, "\(bad)") { try ValueParsers.umask(bad) }
        }
    }
}

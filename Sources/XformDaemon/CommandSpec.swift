/// One named option of a command: a flag (`--daemon`) or an option with a value (`--port <port>`).
///
/// Options are declared, not coded: the parser, the `--help` text, the error messages and the
/// config-file loader all read the same declaration.
public struct OptionSpec: Sendable, Equatable {
    /// The long name without dashes (`netstring-port`); also the key in a config file.
    public var long: String
    /// A one-letter alias (`n` for `-n`), if any.
    public var short: Character?
    /// Further long names accepted on the command line and in config files (`iface` for
    /// `interface`). Shown in help after the main name.
    public var aliases: [String]
    /// The placeholder shown in help (`port` renders `<port>`); `nil` makes this a flag.
    public var valueName: String?
    /// One-line help, wrapped in the OPTIONS section.
    public var help: String
    /// The value used when the option is absent; shown as `(default: ...)`.
    public var defaultValue: String?
    /// The accepted values, if the option is an enumeration; shown as `(values: ...)` and checked
    /// while parsing.
    public var allowedValues: [String]
    /// True when the option may be given several times (all values are kept).
    public var isRepeatable: Bool
    /// Hidden options parse normally but are left out of help and usage.
    public var isHidden: Bool
    /// False for options that make no sense in a config file (such as `config` itself).
    public var isConfigurable: Bool

    /// True when the option takes no value.
    public var isFlag: Bool { valueName == nil }

    /// Declares a flag such as `--daemon` or `-n, --nodaemon`.
    public static func flag(
        _ long: String, short: Character? = nil, aliases: [String] = [], help: String,
        hidden: Bool = false, configurable: Bool = true
    ) -> OptionSpec {
        OptionSpec(
            long: long, short: short, aliases: aliases, valueName: nil, help: help, defaultValue: nil,
            allowedValues: [], isRepeatable: false, isHidden: hidden, isConfigurable: configurable)
    }

    /// Declares an option that takes a value, such as `--port <port>`.
    ///
    /// - Parameters:
    ///   - valueName: the placeholder shown in help; defaults to the long name.
    ///   - values: the accepted values for an enumeration; empty for free text.
    public static func option(
        _ long: String, short: Character? = nil, aliases: [String] = [], valueName: String? = nil,
        help: String, default defaultValue: String? = nil, values: [String] = [], repeatable: Bool = false,
        hidden: Bool = false, configurable: Bool = true
    ) -> OptionSpec {
        OptionSpec(
            long: long, short: short, aliases: aliases, valueName: valueName ?? long, help: help,
            defaultValue: defaultValue, allowedValues: values, isRepeatable: repeatable, isHidden: hidden,
            isConfigurable: configurable)
    }

    /// `--port <port>`: how errors name the option (argument-parser's synopsis).
    public var synopsis: String {
        if let v = valueName { return "--\(long) <\(v)>" }
        return "--\(long)"
    }

    /// `-p, --port, --listen-port <port>`: the label in the OPTIONS section.
    var helpLabel: String {
        var names: [String] = []
        if let s = short { names.append("-\(s)") }
        names.append("--\(long)")
        names.append(contentsOf: aliases.map { "--\($0)" })
        let joined = names.joined(separator: ", ")
        if let v = valueName { return "\(joined) <\(v)>" }
        return joined
    }
}

/// One positional argument of a command, such as `<transform>` or `[<text>]`.
public struct ArgumentSpec: Sendable, Equatable {
    /// The placeholder name without brackets (`transform`).
    public var name: String
    /// One-line help, wrapped in the ARGUMENTS section.
    public var help: String
    /// True when the argument may be left out (shown as `[<text>]`).
    public var isOptional: Bool
    /// True when the argument swallows all remaining positionals (must be the last one).
    public var isRepeating: Bool

    /// Declares a positional argument.
    public init(_ name: String, help: String, optional: Bool = false, repeating: Bool = false) {
        self.name = name
        self.help = help
        self.isOptional = optional
        self.isRepeating = repeating
    }

    /// `<transform>`.
    public var synopsis: String { "<\(name)>" }
}

/// A free-form help section after OPTIONS, such as SIGNALS or EXIT STATUS.
///
/// argument-parser has no such sections; ours use the same `TITLE:` header and the same
/// two-column layout, so they read as part of one page.
public struct HelpSection: Sendable, Equatable {
    /// One piece of a section: a paragraph, or a label with its description.
    public enum Entry: Sendable, Equatable {
        /// A paragraph, indented by two spaces and wrapped.
        case paragraph(String)
        /// A label in the left column (`TERM, INT`) and its text in the right one.
        case item(String, String)
    }

    /// The header without the colon, rendered upper-cased (`SIGNALS`).
    public var title: String
    /// The section's content, in order.
    public var entries: [Entry]

    /// Declares a section.
    public init(_ title: String, _ entries: [Entry]) {
        self.title = title
        self.entries = entries
    }
}

/// The declaration of a command: its name, what it does, its arguments and options, and any
/// extra help sections.
///
/// ``parse(_:configFileReader:)`` turns a command line into a ``ParsedCommand`` or a
/// ``CommandLineError``; ``helpText(columns:)`` and ``errorText(for:columns:)`` render what
/// swift-argument-parser would print; ``parseOrExit(_:environment:)`` does all of it for a
/// `main.swift`.
///
/// A server's `main.swift` then reads:
///
///     SignalMask.blockTerminationSignals()          // before any thread exists
///     SignalMask.ignoreBrokenPipe()
///     let (child, args) = DaemonChild.extract(from: CommandLine.arguments)
///     let options = spec.parseOrExit(Array(args.dropFirst()))
///     if options.flag("daemon"), child == nil {
///         Daemonizer.launch(arguments: CommandLine.arguments, program: spec.name)  // never returns
///     }
///     do {
///         let port = try options.int("netstring-port", in: 0...65535)!
///         ...                                        // pidfile, log file, bind, drop privileges
///         child?.reportReady()
///     } catch let error as CommandLineError {
///         child?.reportFailure(error.exitStatus, message: spec.errorText(for: error))
///         spec.exit(with: error)
///     } catch {
///         child?.reportFailure((error as? any ExitStatusError)?.exitStatus ?? .software, message: "\(error)")
///         exitWithError(error, program: spec.name)
///     }
public struct CommandSpec: Sendable {
    /// The command name used in USAGE and error hints (`transform-server`).
    public var name: String
    /// The one-paragraph OVERVIEW.
    public var overview: String
    /// Further paragraphs after the overview (argument-parser's `discussion`).
    public var discussion: String
    /// A hand-written usage line; `nil` generates one from the arguments and options.
    public var usage: String?
    /// Positional arguments, in order.
    public var arguments: [ArgumentSpec]
    /// Named options, in help order. `-h, --help` (and `--version` when ``version`` is set) are
    /// added automatically.
    public var options: [OptionSpec]
    /// Extra sections rendered after OPTIONS.
    public var sections: [HelpSection]
    /// The version printed by `--version`; `nil` means no `--version` option.
    public var version: String?

    /// Declares a command.
    public init(
        name: String, overview: String, discussion: String = "", usage: String? = nil,
        arguments: [ArgumentSpec] = [], options: [OptionSpec] = [], sections: [HelpSection] = [],
        version: String? = nil
    ) {
        self.name = name
        self.overview = overview
        self.discussion = discussion
        self.usage = usage
        self.arguments = arguments
        self.options = options
        self.sections = sections
        self.version = version
    }

    /// The option whose long name, alias or short name is `name` (without dashes).
    public func option(named name: String) -> OptionSpec? {
        options.first { $0.long == name || $0.aliases.contains(name) }
    }

    func option(short: Character) -> OptionSpec? {
        options.first { $0.short == short }
    }
}

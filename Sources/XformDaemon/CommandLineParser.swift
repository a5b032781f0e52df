import Glibc
import XformReactor

/// Why a command line could not be used, or a request that ends the program early (`--help`).
///
/// ``CommandSpec/errorText(for:columns:)`` renders each case the way swift-argument-parser does,
/// and ``exitStatus`` says how the process should end.
public enum CommandLineError: Error, Equatable, Sendable {
    /// `-h`/`--help` was given: print help to stdout and exit 0.
    case helpRequested
    /// `--version` was given: print the version to stdout and exit 0.
    case versionRequested
    /// An option nobody declared (`--bogus`, `-x`).
    case unknownOption(String)
    /// An option that takes a value came last or was followed by another option (long name).
    case missingValue(option: String)
    /// A flag was given a value (`--daemon=yes`); the option as typed and the value.
    case unexpectedValue(option: String, value: String)
    /// A value that does not parse for the option (long name); `reason` is appended after `: `.
    case invalidValue(value: String, option: String, reason: String?)
    /// A required positional argument is missing; `noArguments` is true when the command line was
    /// empty, in which case the full help follows the error (as argument-parser does).
    case missingArgument(String, noArguments: Bool)
    /// Positional arguments beyond those declared.
    case unexpectedArguments([String])
    /// A config file's contents are wrong: `path:line: message`.
    case configFile(path: String, line: Int, message: String)
    /// A config file could not be read.
    case configFileUnreadable(path: String, reason: String)

    /// The exit status: 0 for help and version, 66 for an unreadable config file, 78 for a bad
    /// one, 64 (`EX_USAGE`) for everything else.
    public var exitStatus: ExitStatus {
        switch self {
        case .helpRequested, .versionRequested: return .success
        case .configFile: return .configuration
        case .configFileUnreadable: return .noInput
        default: return .usage
        }
    }

    /// True for `--help` and `--version`, whose text goes to stdout.
    public var isCleanExit: Bool { exitStatus == .success }
}

/// Where a value came from: the command line, a config file line, or the option's default.
public enum ValueOrigin: Sendable, Equatable {
    case commandLine
    case configFile(path: String, line: Int)
    case defaultValue
}

/// The result of parsing a command line against a ``CommandSpec``.
///
/// Values are kept as given; the typed accessors (``int(_:in:)``, ``duration(_:)``,
/// ``umask(_:)``, ``choice(_:as:)``) validate them and throw ``CommandLineError`` values that name
/// the option the way the user wrote it (or the config file line it came from).
public struct ParsedCommand: Sendable {
    /// The declaration this command line was parsed against.
    public let spec: CommandSpec
    /// All positional arguments, in order (after `--` too).
    public let positionals: [String]

    struct Value: Sendable, Equatable {
        var text: String
        var origin: ValueOrigin
    }

    var values: [String: [Value]]
    var argumentValues: [String: [String]]

    /// True when the option was given (on the command line or in the config file).
    public func wasGiven(_ long: String) -> Bool { !(values[long] ?? []).isEmpty }

    /// Where the option's current value comes from.
    public func origin(of long: String) -> ValueOrigin? {
        if let v = values[long]?.last { return v.origin }
        return spec.option(named: long)?.defaultValue == nil ? nil : .defaultValue
    }

    /// True when the flag is set (`--daemon`, or `daemon = true` in the config file).
    public func flag(_ long: String) -> Bool {
        values[long]?.last.map { $0.text == "true" } ?? false
    }

    /// The option's last value, or its default, or `nil`.
    public func string(_ long: String) -> String? {
        if let v = values[long]?.last { return v.text }
        return spec.option(named: long)?.defaultValue
    }

    /// Every value of a repeatable option, in order (the default alone if none was given).
    public func strings(_ long: String) -> [String] {
        if let v = values[long], !v.isEmpty { return v.map(\.text) }
        return spec.option(named: long)?.defaultValue.map { [$0] } ?? []
    }

    /// The positional argument `name`, or `nil` if it was optional and left out.
    public func argument(_ name: String) -> String? { argumentValues[name]?.first }

    /// All values of a repeating positional argument.
    public func arguments(_ name: String) -> [String] { argumentValues[name] ?? [] }

    /// Parses the option's value with `parse`; a `nil` result or a thrown ``ValueParseError``
    /// becomes an invalid-value error naming the option (or the config line).
    ///
    /// - Returns: the parsed value, or `nil` when the option is absent and has no default.
    public func value<T>(
        _ long: String, _ parse: (String) throws(ValueParseError) -> T
    ) throws(CommandLineError) -> T? {
        guard let text = string(long) else { return nil }
        do {
            return try parse(text)
        } catch {
            throw invalid(long, text, error.reason)
        }
    }

    /// The option's value as an integer within `range`.
    public func int(_ long: String, in range: ClosedRange<Int> = Int.min...Int.max) throws(CommandLineError) -> Int? {
        try value(long) { (text) throws(ValueParseError) in try ValueParsers.integer(text, in: range) }
    }

    /// The option's value as a duration (`30`, `1.5`, `250ms`, `2s`, `1m`).
    public func duration(_ long: String) throws(CommandLineError) -> Duration? {
        try value(long) { (text) throws(ValueParseError) in try ValueParsers.duration(text) }
    }

    /// The option's value as an octal file-mode mask (`022`, `0077`).
    public func umask(_ long: String) throws(CommandLineError) -> mode_t? {
        try value(long) { (text) throws(ValueParseError) in try ValueParsers.umask(text) }
    }

    /// The option's value as a case of a string enumeration.
    public func choice<E: RawRepresentable>(_ long: String, as type: E.Type) throws(CommandLineError) -> E?
    where E.RawValue == String {
        try value(long) { (text) throws(ValueParseError) in
            guard let e = E(rawValue: text) else { throw ValueParseError(nil) }
            return e
        }
    }

    func invalid(_ long: String, _ text: String, _ reason: String?) -> CommandLineError {
        let origin = values[long]?.last?.origin ?? .defaultValue
        if case .configFile(let path, let line) = origin {
            var message = "The value '\(text)' is invalid for '\(long)'"
            if let r = reason { message += ": \(r)" }
            return .configFile(path: path, line: line, message: message)
        }
        return .invalidValue(value: text, option: long, reason: reason)
    }
}

extension CommandSpec {
    /// Reads a config file with plain `open`/`read`.
    ///
    /// - Throws: ``CommandLineError/configFileUnreadable(path:reason:)``.
    public static func readConfigFile(_ path: String) throws(CommandLineError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .configFileUnreadable(path: path, reason: SystemError.message(for: errno)) }
        defer { Syscall.close(fd) }
        let (bytes, err) = Syscall.readToEnd(fd)
        if let err { throw .configFileUnreadable(path: path, reason: SystemError.message(for: err)) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Parses `arguments` (without the program name).
    ///
    /// Accepts `--opt value`, `--opt=value`, `-o value`, `-ovalue`, grouped short flags (`-nv`),
    /// repeated options, positionals anywhere, and `--` to end options. `-h`/`--help` anywhere
    /// before `--` wins over every error. If the spec declares a `config` option and it is given,
    /// the named file is loaded (``ConfigFile``) and supplies every option the command line did not.
    ///
    /// - Parameter configFileReader: reads a config file's text (injected by tests).
    /// - Returns: the parsed command.
    /// - Throws: ``CommandLineError``.
    public func parse(
        _ arguments: [String],
        configFileReader: (String) throws(CommandLineError) -> String = CommandSpec.readConfigFile
    ) throws(CommandLineError) -> ParsedCommand {
        for a in arguments {
            if a == "--" { break }
            if a == "-h" || a == "--help" { throw .helpRequested }
            if version != nil, a == "--version" { throw .versionRequested }
        }

        var values: [String: [ParsedCommand.Value]] = [:]
        var positionals: [String] = []
        var i = 0
        var terminated = false

        func record(_ opt: OptionSpec, _ text: String) throws(CommandLineError) {
            if !opt.allowedValues.isEmpty, !opt.allowedValues.contains(text) {
                throw .invalidValue(value: text, option: opt.long, reason: nil)
            }
            values[opt.long, default: []].append(.init(text: text, origin: .commandLine))
        }
        func nextValue() -> String? {
            guard i < arguments.count, CommandSpec.looksLikeValue(arguments[i]) else { return nil }
            defer { i += 1 }
            return arguments[i]
        }

        while i < arguments.count {
            let a = arguments[i]
            i += 1
            if terminated || a == "-" || !a.hasPrefix("-") {
                positionals.append(a)
                continue
            }
            if a == "--" {
                terminated = true
                continue
            }
            if a.hasPrefix("--") {
                let body = a.dropFirst(2)
                let name: Substring
                let inline: String?
                if let eq = body.firstIndex(of: "=") {
                    name = body[..<eq]
                    inline = String(body[body.index(after: eq)...])
                } else {
                    name = body
                    inline = nil
                }
                guard let opt = option(named: String(name)) else { throw .unknownOption("--\(name)") }
                if opt.isFlag {
                    if let inline { throw .unexpectedValue(option: "--\(name)", value: inline) }
                    try record(opt, "true")
                } else {
                    guard let v = inline ?? nextValue() else { throw .missingValue(option: opt.long) }
                    try record(opt, v)
                }
                continue
            }
            if CommandSpec.looksNumeric(a) {
                positionals.append(a)
                continue
            }
            let chars = Array(a.dropFirst())
            var j = 0
            while j < chars.count {
                guard let opt = option(short: chars[j]) else { throw .unknownOption("-\(chars[j])") }
                if opt.isFlag {
                    try record(opt, "true")
                    j += 1
                    continue
                }
                let rest = String(chars[(j + 1)...])
                guard let v = rest.isEmpty ? nextValue() : rest else { throw .missingValue(option: opt.long) }
                try record(opt, v)
                break
            }
        }

        var argumentValues: [String: [String]] = [:]
        var remaining = positionals[...]
        for arg in self.arguments {
            if arg.isRepeating {
                if remaining.isEmpty, !arg.isOptional {
                    throw .missingArgument(arg.name, noArguments: arguments.isEmpty)
                }
                argumentValues[arg.name] = Array(remaining)
                remaining = []
            } else if let v = remaining.popFirst() {
                argumentValues[arg.name] = [v]
            } else if !arg.isOptional {
                throw .missingArgument(arg.name, noArguments: arguments.isEmpty)
            }
        }
        if !remaining.isEmpty { throw .unexpectedArguments(Array(remaining)) }

        if option(named: "config") != nil, let path = values["config"]?.last?.text, !path.isEmpty {
            let text = try configFileReader(path)
            for entry in try ConfigFile.parse(text, path: path, spec: self)
            where (values[entry.option] ?? []).allSatisfy({ $0.origin != .commandLine }) {
                values[entry.option, default: []].append(
                    .init(text: entry.value, origin: .configFile(path: path, line: entry.line)))
            }
        }

        return ParsedCommand(spec: self, positionals: positionals, values: values, argumentValues: argumentValues)
    }

    /// True for a token that can be an option's value: anything not starting with `-`, a lone
    /// `-` (stdin/stdout), or a negative number.
    static func looksLikeValue(_ s: String) -> Bool {
        !s.hasPrefix("-") || s == "-" || looksNumeric(s)
    }

    static func looksNumeric(_ s: String) -> Bool {
        guard s.hasPrefix("-"), s.count > 1 else { return false }
        return s.dropFirst().allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") }
    }

    /// Parses `arguments`, or prints help/version (stdout, exit 0) or the error (stderr, exit 64,
    /// 66 or 78) and ends the process. The wrap width is `COLUMNS` from `environment`, else 80.
    ///
    /// - Returns: the parsed command; never returns on help or error.
    public func parseOrExit(
        _ arguments: [String] = Array(CommandLine.arguments.dropFirst()),
        environment: [String: String] = ProcessEnvironment.current()
    ) -> ParsedCommand {
        do {
            return try parse(arguments)
        } catch {
            exit(with: error, environment: environment)
        }
    }

    /// Prints what `error` calls for (help and version to stdout, errors to stderr) and exits
    /// with its status. Use it for errors thrown later by the typed accessors too.
    public func exit(
        with error: CommandLineError, environment: [String: String] = ProcessEnvironment.current()
    ) -> Never {
        let text = errorText(for: error, columns: HelpFormatter.columns(environment: environment))
        if error.isCleanExit { writeToStandardOutput(text) } else { writeToStandardError(text) }
        error.exitStatus.exit()
    }
}

/// Renders help and error text in swift-argument-parser's layout.
///
/// The layout, as argument-parser prints it: `OVERVIEW:`, `USAGE:`, then `ARGUMENTS:` and
/// `OPTIONS:` sections whose entries put a label two spaces in and its text at column 27
/// (labels of 24 characters or more put the text on the next line), wrapped greedily at the
/// screen width. Our extra sections (SIGNALS, EXIT STATUS...) follow OPTIONS in the same style.
public enum HelpFormatter {
    static let indent = 2
    static let labelColumnWidth = 26

    /// The wrap width: `COLUMNS` from `environment` when it is a positive integer, else 80.
    /// (Help is usually read from a pipe or a golden file, so no terminal query is made.)
    public static func columns(environment: [String: String]) -> Int {
        if let c = environment["COLUMNS"].flatMap({ Int($0) }), c > labelColumnWidth + 10 { return c }
        return 80
    }

    /// Wraps `text` to `columns`, indenting every non-empty line by `indent` spaces.
    ///
    /// Breaks at the last space that leaves the line shorter than the available width, keeps
    /// explicit newlines, and lets a word longer than the width overflow rather than split it.
    static func wrap(_ text: String, columns: Int, indent: Int = 0) -> String {
        let width = max(columns - indent, 1)
        var lines: [Substring] = []
        var rest = Substring(text)
        while true {
            let chunk = rest.prefix(width)
            if let newline = chunk.lastIndex(of: "\n") {
                lines.append(contentsOf: rest[..<newline].split(separator: "\n", omittingEmptySubsequences: false))
                rest = rest[rest.index(after: newline)...]
            } else if chunk.endIndex == rest.endIndex {
                lines.append(rest)
                break
            } else if let space = chunk.lastIndex(of: " ") {
                lines.append(rest[..<space])
                rest = rest[rest.index(after: space)...]
            } else if let space = rest.firstIndex(of: " ") {
                lines.append(rest[..<space])
                rest = rest[rest.index(after: space)...]
            } else {
                lines.append(rest)
                break
            }
        }
        let pad = String(repeating: " ", count: indent)
        return lines.map { $0.isEmpty ? "" : pad + $0 }.joined(separator: "\n")
    }

    /// One two-column entry: `  label` then `text` at column 27, or on the next line when the
    /// label is too wide. Ends with a newline.
    static func entry(label: String, text: String, columns: Int) -> String {
        let padded = String(repeating: " ", count: indent) + label
        guard !text.isEmpty else { return padded + "\n" }
        let wrapped = wrap(text, columns: columns, indent: labelColumnWidth)
        if padded.count < labelColumnWidth {
            return padded + wrapped.dropFirst(padded.count) + "\n"
        }
        return padded + "\n" + wrapped + "\n"
    }

    /// `. Please provide one of 'a' and 'b'.` (argument-parser's list of accepted values).
    static func valueList(_ values: [String]) -> String {
        guard !values.isEmpty else { return "" }
        let quoted = values.map { "'\($0)'" }
        if quoted.count < 6 {
            let list =
                quoted.count <= 2
                ? quoted.joined(separator: " and ")
                : quoted.dropLast().joined(separator: ", ") + " or \(quoted[quoted.count - 1])"
            return ". Please provide one of \(list)."
        }
        return ". Please provide one of the following:\n" + values.map { "  - \($0)" }.joined(separator: "\n")
    }
}

extension OptionSpec {
    /// The help text with argument-parser's `(values: ...; default: ...)` suffix.
    var helpAbstract: String {
        let values = allowedValues.joined(separator: ", ")
        let suffix: String
        switch (values.isEmpty, defaultValue ?? "") {
        case (true, ""): suffix = ""
        case (false, ""): suffix = "(values: \(values))"
        case (true, let d): suffix = "(default: \(d))"
        case (false, let d): suffix = "(values: \(values); default: \(d))"
        }
        return [help, suffix].filter { !$0.isEmpty }.joined(separator: " ")
    }
}

extension CommandSpec {
    /// The usage synopsis without the `USAGE:` prefix: the hand-written ``usage`` if set, else
    /// every visible option and argument (`name [--port <port>] [--daemon] <transform>`), or
    /// `name [<options>] <transform>` when there are more than 12 of them.
    public var usageSynopsis: String {
        if let usage { return usage }
        let visible = options.filter { !$0.isHidden }
        let argumentParts = arguments.map { a -> String in
            var s = a.synopsis
            if a.isRepeating { s += " ..." }
            return a.isOptional ? "[\(s)]" : s
        }
        if visible.count + arguments.count > 12 {
            return ([name, "[<options>]"] + argumentParts).joined(separator: " ")
        }
        let optionParts = visible.map { o -> String in
            var s = o.synopsis
            if o.isRepeatable { s += " ..." }
            return "[\(s)]"
        }
        return ([name] + optionParts + argumentParts).joined(separator: " ")
    }

    /// The `Usage: ...` line used in error messages (continuation lines indented by 7).
    public var usageLine: String {
        "Usage: " + usageSynopsis.replacingNewlines(with: "\n       ")
    }

    /// The full `--help` text, wrapped at `columns`; ends with a newline.
    public func helpText(columns: Int = 80) -> String {
        var out = ""
        var abstract = overview
        if !discussion.isEmpty { abstract += (abstract.isEmpty ? "" : "\n\n") + discussion }
        if !abstract.isEmpty { out += HelpFormatter.wrap("OVERVIEW: \(abstract)", columns: columns) + "\n\n" }
        out += "USAGE: " + usageSynopsis.replacingNewlines(with: "\n       ") + "\n\n"

        var blocks: [String] = []
        if !arguments.isEmpty {
            var b = "ARGUMENTS:\n"
            for a in arguments {
                b += HelpFormatter.entry(label: a.synopsis, text: a.help, columns: columns)
            }
            blocks.append(b)
        }
        var b = "OPTIONS:\n"
        for o in options where !o.isHidden {
            b += HelpFormatter.entry(label: o.helpLabel, text: o.helpAbstract, columns: columns)
        }
        if version != nil { b += HelpFormatter.entry(label: "--version", text: "Show the version.", columns: columns) }
        b += HelpFormatter.entry(label: "-h, --help", text: "Show help information.", columns: columns)
        blocks.append(b)
        for section in sections {
            var b = section.title.uppercased() + ":\n"
            for entry in section.entries {
                switch entry {
                case .paragraph(let text):
                    b += HelpFormatter.wrap(text, columns: columns, indent: HelpFormatter.indent) + "\n"
                case .item(let label, let text):
                    b += HelpFormatter.entry(label: label, text: text, columns: columns)
                }
            }
            blocks.append(b)
        }
        return out + blocks.joined(separator: "\n")
    }

    /// What argument-parser prints for `error`, byte for byte: the help (plus its trailing blank
    /// line) or version text for those requests;
    /// otherwise `Error: ...`, a `Help:` line where it has one, then `Usage: ...` and
    /// `  See '<name> --help' for more information.` (or the full help when the command line
    /// was empty). Config-file errors are one line: `Error: path:line: message`.
    public func errorText(for error: CommandLineError, columns: Int = 80) -> String {
        var helpLine: String?
        let message: String
        switch error {
        case .helpRequested:
            // argument-parser prints the help and then a newline: the output ends with a blank line.
            return helpText(columns: columns) + "\n"
        case .versionRequested:
            return (version ?? "Unspecified version") + "\n"
        case .configFile(let path, let line, let text):
            return "Error: \(path):\(line): \(text)\n"
        case .configFileUnreadable(let path, let reason):
            return "Error: Cannot read config file '\(path)': \(reason)\n"
        case .unknownOption(let name):
            message = "Unknown option '\(name)'"
        case .missingValue(let long):
            let opt = option(named: long)
            message = "Missing value for '\(opt?.synopsis ?? "--\(long)")'"
            if let opt { helpLine = "\(opt.synopsis)  \(opt.help)" }
        case .unexpectedValue(let name, let value):
            message = "The option '\(name)' does not take any value, but '\(value)' was specified."
        case .invalidValue(let value, let long, let reason):
            let opt = option(named: long)
            var m = "The value '\(value)' is invalid for '\(opt?.synopsis ?? "--\(long)")'"
            if let reason {
                m += ": \(reason)"
            } else if let opt {
                m += HelpFormatter.valueList(opt.allowedValues)
            }
            message = m
            if let opt { helpLine = "\(opt.synopsis)  \(opt.help)" }
        case .missingArgument(let name, let noArguments):
            let text = "Error: Missing expected argument '<\(name)>'\n"
            if noArguments { return text + "\n" + helpText(columns: columns) + "\n" }
            message = "Missing expected argument '<\(name)>'"
        case .unexpectedArguments(let extra):
            message =
                extra.count == 1
                ? "Unexpected argument '\(extra[0])'"
                : "\(extra.count) unexpected arguments: '\(extra.joined(separator: "', '"))'"
        }
        var out = "Error: \(message)\n"
        if let helpLine { out += "Help:  \(helpLine)\n" }
        out += usageLine + "\n"
        out += "  See '\(name) --help' for more information.\n"
        return out
    }
}

extension String {
    fileprivate func replacingNewlines(with replacement: String) -> String {
        split(separator: "\n", omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

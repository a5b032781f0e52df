/// The `--config FILE` format: one `key = value` per line.
///
/// - Keys are long option names without `--` (aliases work too); unknown keys are errors that
///   name the line.
/// - Blank lines and lines whose first non-blank character is `#` are ignored. There are no
///   trailing comments: `#` inside a value is part of the value.
/// - Spaces around the key and the value are dropped; a value wrapped in double quotes keeps its
///   inner spaces (`motd = " hi "`). An empty value is allowed (`pidfile =` disables a pidfile).
/// - Flags take `true/false`, `yes/no`, `on/off` or `1/0`.
/// - A key may appear once, unless its option is repeatable.
/// - The command line wins: an option given there ignores every line for that key.
public enum ConfigFile {
    /// One `key = value` line, resolved to its option's long name.
    public struct Entry: Sendable, Equatable {
        /// The option's long name (aliases resolved).
        public var option: String
        /// The value (`"true"`/`"false"` for flags).
        public var value: String
        /// The 1-based line number.
        public var line: Int
    }

    /// Parses a config file's text against `spec`.
    ///
    /// - Returns: the entries, in file order.
    /// - Throws: ``CommandLineError/configFile(path:line:message:)`` for malformed lines, unknown
    ///   keys, duplicate keys and values outside an option's allowed set.
    public static func parse(_ text: String, path: String, spec: CommandSpec) throws(CommandLineError) -> [Entry] {
        var entries: [Entry] = []
        var firstLine: [String: Int] = [:]
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = trim(rawLine)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else {
                throw .configFile(path: path, line: lineNumber, message: "Expected 'key = value', found '\(line)'")
            }
            let key = String(trim(line[..<eq]))
            var value = String(trim(line[line.index(after: eq)...]))
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            guard !key.isEmpty else {
                throw .configFile(path: path, line: lineNumber, message: "Missing key before '='")
            }
            guard let opt = spec.option(named: key), !opt.isHidden, opt.isConfigurable else {
                throw .configFile(path: path, line: lineNumber, message: "Unknown key '\(key)'")
            }
            if let first = firstLine[opt.long], !opt.isRepeatable {
                throw .configFile(
                    path: path, line: lineNumber, message: "Duplicate key '\(key)' (first set on line \(first))")
            }
            firstLine[opt.long] = firstLine[opt.long] ?? lineNumber
            if opt.isFlag {
                do {
                    value = try ValueParsers.boolean(value) ? "true" : "false"
                } catch {
                    throw .configFile(
                        path: path, line: lineNumber,
                        message: "The value '\(value)' is invalid for '\(key)': expected true or false")
                }
            } else if !opt.allowedValues.isEmpty, !opt.allowedValues.contains(value) {
                throw .configFile(
                    path: path, line: lineNumber,
                    message: "The value '\(value)' is invalid for '\(key)'\(HelpFormatter.valueList(opt.allowedValues))")
            }
            entries.append(Entry(option: opt.long, value: value, line: lineNumber))
        }
        return entries
    }

    static func trim(_ s: Substring) -> Substring {
        var s = s
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return s
    }
}

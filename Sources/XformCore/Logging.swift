/// Severity of a log event, ordered from chattiest to gravest (swift-log's levels).
public enum LogLevel: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    case trace, debug, info, notice, warning, error, critical

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .trace: return "trace"
        case .debug: return "debug"
        case .info: return "info"
        case .notice: return "notice"
        case .warning: return "warning"
        case .error: return "error"
        case .critical: return "critical"
        }
    }

    /// Parses a level name as printed by ``description``.
    public init?(name: String) {
        guard let l = LogLevel.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = l
    }
}

/// One log event. The sink adds the timestamp.
public struct LogRecord: Sendable {
    public var level: LogLevel
    /// Twisted's system tag: who is speaking, e.g. `netstring,127.0.0.1:5000`.
    public var system: String
    public var message: String
    public init(level: LogLevel, system: String, message: String) {
        self.level = level
        self.system = system
        self.message = message
    }
}

/// Where log events go. Libraries never pick one; the application does.
public protocol LogHandler: Sendable {
    /// Events below this level are not built at all.
    var minimumLevel: LogLevel { get }
    /// Writes one event.
    func write(_ record: LogRecord)
}

/// A handler that drops everything (the default for libraries and tests that do not care).
public struct NullLogHandler: LogHandler {
    public init() {}
    public var minimumLevel: LogLevel { .critical }
    public func write(_ record: LogRecord) {}
}

/// A small logger value: a system tag and a handler. Cheap to copy and to re-tag per connection.
public struct Logger: Sendable {
    public var system: String
    public var handler: any LogHandler

    public init(system: String, handler: any LogHandler = NullLogHandler()) {
        self.system = system
        self.handler = handler
    }

    /// A logger with another system tag and the same handler.
    public func with(system: String) -> Logger { Logger(system: system, handler: handler) }

    /// True when events at `level` would be written.
    @inline(__always) public func isEnabled(_ level: LogLevel) -> Bool { level >= handler.minimumLevel }

    /// Logs `message` at `level`; the message is only built when the level is enabled.
    public func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        guard isEnabled(level) else { return }
        handler.write(LogRecord(level: level, system: system, message: message()))
    }

    public func trace(_ m: @autoclosure () -> String) { log(.trace, m()) }
    public func debug(_ m: @autoclosure () -> String) { log(.debug, m()) }
    public func info(_ m: @autoclosure () -> String) { log(.info, m()) }
    public func notice(_ m: @autoclosure () -> String) { log(.notice, m()) }
    public func warning(_ m: @autoclosure () -> String) { log(.warning, m()) }
    public func error(_ m: @autoclosure () -> String) { log(.error, m()) }
    public func critical(_ m: @autoclosure () -> String) { log(.critical, m()) }
}

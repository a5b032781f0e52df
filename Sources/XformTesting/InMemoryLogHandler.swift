import Synchronization
import XformCore

/// A ``LogHandler`` that keeps every record in memory, for asserting on what was logged.
///
/// Thread-safe: records are kept behind a mutex.
public final class InMemoryLogHandler: LogHandler {
    public let minimumLevel: LogLevel
    let store = Mutex<[LogRecord]>([])

    /// Creates a handler that keeps records at `minimumLevel` and above (all by default).
    public init(minimumLevel: LogLevel = .trace) {
        self.minimumLevel = minimumLevel
    }

    public func write(_ record: LogRecord) {
        store.withLock { $0.append(record) }
    }

    /// The records so far, in order.
    public var records: [LogRecord] { store.withLock { $0 } }

    /// The messages so far, in order.
    public var messages: [String] { records.map(\.message) }

    /// True if a record at `level` (any level if nil) has a message containing `text`.
    public func contains(_ text: String, level: LogLevel? = nil) -> Bool {
        records.contains { (level == nil || $0.level == level) && $0.message.contains(text) }
    }

    /// Forgets the records so far.
    public func clear() { store.withLock { $0.removeAll() } }

    /// A logger writing here with the given system tag.
    public func logger(system: String = "test") -> Logger { Logger(system: system, handler: self) }
}

/// The limits every connection lives within. All are always on; all are configurable.
public struct ServerLimits: Sendable, Equatable {
    /// The longest request payload (netstring) or request text (line block), in bytes.
    /// The default is the original's 99,999 bytes (Twisted's `NetstringReceiver.MAX_LENGTH`).
    public var maxRequestBytes: Int = 99_999
    /// The longest line on the line port, in bytes (Twisted's `LineReceiver.MAX_LENGTH`).
    public var maxLineLength: Int = 16_384
    /// Connections with no complete request for this long (while no reply is owed) are closed;
    /// nil disables the timeout (protocol-spec/netstring.md 4).
    public var idleTimeout: Duration? = .seconds(120)
    /// A request must be complete this long after its first byte arrived, or the connection is
    /// closed (nginx's `client_header_timeout`/`client_body_timeout`): a client trickling bytes
    /// cannot hold a connection. 30 s lets a 99,999-byte request through at 4 KB/s; nil disables.
    public var requestTimeout: Duration? = .seconds(30)
    /// The most open connections per port; more are closed at once.
    public var maxConnections: Int = 1_024
    /// The most requests one connection may have waiting for their replies; reading stops beyond.
    public var maxPendingPerConnection: Int = 64
    /// The most bytes one connection may hold in pending work (inputs being transformed,
    /// replies queued behind them); delivery of its requests pauses beyond (issue 10 2).
    public var maxPendingBytesPerConnection: Int = 1 << 20
    /// The most bytes all connections together may hold in pending work; beyond it the
    /// connections holding more than their share stop being read until it drains.
    public var maxPendingBytesTotal: Int = 64 << 20
    /// Inputs longer than this many bytes that need the Unicode path are transformed on the
    /// thread pool. That path runs at 150-300 MB/s on non-ASCII text (table-driven), so a
    /// request below the threshold holds the reactor for well under a millisecond.
    public var offloadThreshold: Int = 64 * 1024
    /// All-ASCII inputs up to this many bytes go through the transform's byte loop inline, on
    /// the reactor thread (about 4 GB/s: 1 MiB costs ~250 µs, less than a thread-pool hop).
    public var asciiInlineLimit: Int = 4 * 1024 * 1024

    public init() {}
}

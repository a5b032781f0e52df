import Glibc
import XformClient
import XformCore
import XformTransforms

/// The transform proxy: a ``TransformBackend`` that answers requests from upstream transform
/// servers, through a cache. It is the Part 14 exercise ("a transformation proxy ... that works
/// like the original transformation service, but uses an external server to do the
/// transformations") with the chapter's caching exercises and Part 19's cancel on disconnect.
///
/// - **Upstream calls** go through one ``TransformProxy``: kept-alive pooled connections,
///   retries with the seed's backoff on transient failures only, failover across the upstreams
///   in order; an original-protocol upstream (the book's Twisted server) works too.
/// - **Which transforms**: the upstream's `?list`, fetched when the service starts and every
///   ``Configuration/listRefreshInterval``; requests that arrive before the first list wait for it
///   (Terry Jones's deferred `__init__`, ``DeferredInitialization``) and fail with
///   ``TransformError/upstreamUnavailable(_:)`` if it cannot be had. With
///   ``Configuration/upstreamTransforms`` (for original-protocol upstreams, which cannot list)
///   the list is given. Guarded dispatch: a name not in the list reaches nothing upstream.
/// - **Cache and single flight** (``DeferredMemoizer``): successful results keyed by the
///   transform name and the exact text bytes, least recently used evicted first under
///   ``Configuration/cacheBytes`` (keys and values counted, plus ``entryOverhead`` per entry),
///   optionally expiring after ``Configuration/cacheTTL``; concurrent identical requests share
///   one upstream call; failures are never cached.
/// - **Cancel on disconnect** (Part 19): the server cancels a request's pending Deferred when
///   its client has gone; when the last waiter of an upstream call is gone, the call is
///   cancelled: its request withdrawn, its connection closed unless other calls use it.
///   Logged at debug level the way Part 19 prints it ("Fetching ... from upstream." /
///   "Canceling ... upstream call.").
/// - **Errors**: an upstream's typed errors pass through as the same ``TransformError``;
///   an unreachable upstream (after the retries) is ``TransformError/upstreamUnavailable(_:)``.
///
/// As a ``Service`` it fetches the first list and starts the refresh timer when started, and
/// closes the pooled connections when stopped. Confined to the reactor thread.
public final class ProxyBackend: Service, TransformBackend {
    /// What the proxy needs to know.
    public struct Configuration {
        /// The upstream servers, in failover order (at least one).
        public var upstreams: [Endpoint]
        /// The transform names, for upstreams that cannot list them (the original protocol);
        /// nil asks the upstream (`?list`).
        public var upstreamTransforms: [String]?
        /// The cache's bound in bytes, keys and values counted; 0 disables the cache
        /// (single flight stays). Default 64 MiB.
        public var cacheBytes: Int = 64 * 1024 * 1024
        /// How long a cached result is served; nil for no limit (the default).
        public var cacheTTL: Duration?
        /// How often the upstream's list is fetched again. Default 60 s.
        public var listRefreshInterval: Duration = .seconds(60)
        /// The upstream client's tunables (backoff, timeouts, pooling). Default: the client's,
        /// with requests pipelined 64 deep per connection (a transform server's default
        /// `maxPendingPerConnection`), so one connection carries a busy proxy's calls and a
        /// reactor iteration's requests go out in one write.
        public var client: TransformProxy.Configuration = {
            var c = TransformProxy.Configuration()
            c.pipelineDepth = 64
            return c
        }()

        /// A configuration for these upstreams, with the defaults.
        public init(upstreams: [Endpoint]) {
            self.upstreams = upstreams
        }
    }

    /// The bookkeeping bytes counted per cache entry besides its key and value (the table slot,
    /// the two arrays' headers), so `cacheBytes` bounds the memory really held.
    public static let entryOverhead = 96

    /// The configuration in force.
    public let configuration: Configuration
    /// The upstream client.
    public let upstream: TransformProxy
    let clock: any ReactorTime
    let logger: Logger
    let memo: DeferredMemoizer<ProxyCacheKey, [UInt8]>
    let initialization: DeferredInitialization<UpstreamCatalog>
    var refreshTimer: (any DelayedCall)?
    var refreshing = false
    var listFailures = 0
    let upstreamStats: [UpstreamStatistics]

    /// Makes a proxy backend; nothing is fetched before ``startService()`` (or the first request).
    ///
    /// - Parameters:
    ///   - configuration: upstreams, cache, refresh.
    ///   - reactor: time and TCP for the upstream client.
    ///   - logger: where to log (debug: the Part 19 lines; warning: list refresh failures).
    public init(configuration: Configuration, reactor: any Reactor, logger: Logger = Logger(system: "proxy")) {
        precondition(!configuration.upstreams.isEmpty, "the proxy needs at least one upstream")
        self.configuration = configuration
        self.clock = reactor
        self.logger = logger
        upstream = TransformProxy(endpoints: configuration.upstreams, reactor: reactor, configuration: configuration.client)
        upstreamStats = configuration.upstreams.map { UpstreamStatistics(endpoint: $0) }
        var fetch: ((ProxyCacheKey) -> Deferred<[UInt8]>)?
        memo = DeferredMemoizer(
            maximumCost: configuration.cacheBytes, timeToLive: configuration.cacheTTL, clock: reactor,
            cost: { key, value in key.bytes.count + value.count + ProxyBackend.entryOverhead },
            { fetch!($0) })
        var listUpstream: (() -> Deferred<UpstreamCatalog>)?
        initialization = DeferredInitialization(retriesOnDemand: true) { listUpstream!() }
        super.init(name: "proxy")
        fetch = { [unowned self] key in self.fetch(key) }
        listUpstream = { [unowned self] in self.fetchCatalog() }
        memo.onCancel = { [logger] key in logger.debug("Canceling \(key.name) upstream call.") }
        memo.mapFailure = { [unowned self] _, error in
            let mapped = Self.transformError(error)
            if case .unknownTransform? = mapped as? TransformError {
                // The list is stale: the upstream no longer has it.
                self.refreshCatalog()
            }
            return mapped
        }
        let stats = upstreamStats
        upstream.onAttempt = { endpoint, elapsed, failure in
            stats.first { $0.endpoint == endpoint }?.record(elapsed: elapsed, failed: failure != nil)
        }
        if let names = configuration.upstreamTransforms {
            initialization.update(UpstreamCatalog(names: names))
        }
    }

    // MARK: Service

    /// Fetches the first list (unless it was given) and starts the refresh timer.
    public override func startService() {
        super.startService()
        guard configuration.upstreamTransforms == nil else { return }
        initialization.start()
        scheduleRefresh()
    }

    /// Stops the refresh timer and closes the upstream connections (calls still in flight fail).
    public override func stopService() -> Deferred<Void> {
        refreshTimer?.cancel()
        refreshTimer = nil
        upstream.close()
        return super.stopService()
    }

    func scheduleRefresh() {
        refreshTimer = clock.callLater(configuration.listRefreshInterval) { [weak self] in
            guard let self, self.running else { return }
            self.refreshCatalog()
            self.scheduleRefresh()
        }
    }

    /// Fetches the list again: a failed or never-run first fetch is re-tried; a refresh that
    /// fails keeps the list already known.
    func refreshCatalog() {
        guard configuration.upstreamTransforms == nil, !refreshing else { return }
        switch initialization.state {
        case .initializing: return
        case .idle, .failed:
            initialization.start()
        case .ready:
            _ = fetchCatalog().mapResult { [weak self] outcome in
                guard let self, case .success(let catalog) = outcome else { return }
                self.initialization.update(catalog)
            }
        }
    }

    func fetchCatalog() -> Deferred<UpstreamCatalog> {
        refreshing = true
        return upstream.list().mapResult { [weak self] outcome in
            self?.refreshing = false
            switch outcome {
            case .success(let names):
                let catalog = UpstreamCatalog(names: names.filter { TransformName.isValid($0) })
                if let self, self.initialization.resource?.names != catalog.names {
                    self.logger.info("upstream transforms: \(catalog.names.joined(separator: ", "))")
                }
                return catalog
            case .failure(let error):
                self?.listFailures += 1
                let e = TransformProxyError.from(error)
                self?.logger.warning("cannot get the transform list from the upstream: \(e)")
                throw TransformError.upstreamUnavailable("cannot get the transform list from the upstream: \(e)")
            }
        }
    }

    // MARK: TransformBackend

    /// The upstream's transforms (empty until the first list is known), sorted by name.
    public var catalog: [(name: String, summary: String)] {
        (initialization.resource?.names ?? []).map { ($0, "served by the upstream") }
    }

    /// True once the upstream's first list is known (or the list was given): before that, a
    /// listing (`?list`, line `list`, `GET /transforms`) fails with `upstream_unavailable`
    /// rather than answer an empty list; a failed or never-run fetch is tried again now.
    public var catalogIsKnown: Bool {
        if initialization.resource != nil { return true }
        refreshCatalog()
        return false
    }

    /// Runs one request: from the cache, by joining an identical upstream call in flight, or by a
    /// new upstream call; before the first list is known, after it.
    ///
    /// - Returns: `.done` for a cache hit; `.failed` for a name not in the list
    ///   (``TransformError/unknownTransform(_:)``, or ``TransformError/invalidName`` outside the
    ///   grammar), text over the context's limit (``TransformError/tooLarge``) or not UTF-8
    ///   (``TransformError/invalidUTF8``); otherwise `.pending`, failing with the upstream's
    ///   error or ``TransformError/upstreamUnavailable(_:)``. Cancelling it detaches this
    ///   request; the upstream call is cancelled when no request waits for it any more.
    public func start(name: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer, context: TransformContext)
        -> TransformOutcome
    {
        if let catalog = initialization.resource {
            return run(name: name, text: text, context: context, catalog: catalog)
        }
        guard TransformName.isValid(name) else { return .failed(.invalidName) }
        if text.count > context.maximumInputBytes { return .failed(.tooLarge) }
        let nameCopy = [UInt8](name)
        let textCopy = [UInt8](text)
        return .pending(
            initialization.whenReady { [weak self] catalog -> Deferred<[UInt8]> in
                guard let self else { throw CancelledError() }
                let outcome = nameCopy.withUnsafeBytes { n in
                    textCopy.withUnsafeBytes { t in self.run(name: n, text: t, context: context, catalog: catalog) }
                }
                switch outcome {
                case .done(let bytes): return succeed(bytes)
                case .failed(let error): return fail(error)
                case .pending(let d): return d
                }
            })
    }

    func run(
        name: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer, context: TransformContext,
        catalog: UpstreamCatalog
    ) -> TransformOutcome {
        guard catalog.contains(name) else {
            guard TransformName.isValid(name) else { return .failed(.invalidName) }
            return .failed(.unknownTransform(String(decoding: name, as: UTF8.self)))
        }
        if text.count > context.maximumInputBytes { return .failed(.tooLarge) }
        let probe = ProxyCacheKey(probing: name, text: text)
        if let hit = memo.cachedValue(forKey: probe) {
            logger.debug("Using cached \(probe.name) result.")
            return .done(hit)
        }
        // Only valid text reaches the cache, so hits need no check.
        guard ASCIIBytes.isASCII(text) || String(validating: text, as: UTF8.self) != nil else {
            return .failed(.invalidUTF8)
        }
        return .pending(memo.callUncached(ProxyCacheKey(owning: probe)))
    }

    /// The memoized function: one upstream call, the key's bytes sent as they are and the
    /// reply's bytes kept as they come (no `String` either way). Its failures reach the waiters
    /// through the memoizer's `mapFailure` (``transformError(_:)``).
    func fetch(_ key: ProxyCacheKey) -> Deferred<[UInt8]> {
        logger.debug("Fetching \(key.name) from upstream.")
        return upstream.xform(bytes: key.bytes, nameCount: key.nameCount)
    }

    /// An upstream client failure as the server reports it: typed errors unchanged,
    /// unreachable upstreams as ``TransformError/upstreamUnavailable(_:)``, cancellation as
    /// `CancelledError`.
    static func transformError(_ error: any Error) -> any Error {
        if error is CancelledError { return error }
        let e = TransformProxyError.from(error)
        switch e {
        case .unknownTransform(let name, _): return TransformError.unknownTransform(name)
        case .badRequest(let message): return TransformError.failed("the upstream refused the request: \(message)")
        case .tooLarge: return TransformError.tooLarge
        case .invalidUTF8: return TransformError.invalidUTF8
        case .transformFailed(let message): return TransformError.failed(message)
        case .closedWithoutReply:
            return TransformError.failed("the upstream closed the connection without a reply")
        case .cancelled: return CancelledError()
        case .connectionRefused, .connectFailed, .unknownHost, .connectionLost, .timedOut, .shuttingDown,
            .protocolError, .notSupported:
            return TransformError.upstreamUnavailable(e.description)
        }
    }

    // MARK: Statistics

    /// The proxy's figures: cache hits, misses, evictions, expirations, bytes and entries held,
    /// single-flight joins, upstream cancellations and failures, and per upstream (numbered in
    /// failover order from 0) attempts, failures and latency percentiles in milliseconds.
    public var statistics: [(name: String, value: Double)] {
        let s = memo.statistics
        var figures: [(name: String, value: Double)] = [
            ("cache_hits", Double(s.hits)),
            ("cache_misses", Double(s.misses)),
            ("cache_evictions", Double(s.evictions)),
            ("cache_expirations", Double(s.expirations)),
            ("cache_bytes", Double(memo.totalCost)),
            ("cache_entries", Double(memo.count)),
            ("cache_max_bytes", Double(configuration.cacheBytes)),
            ("single_flight_joins", Double(s.joins)),
            ("upstream_cancellations", Double(s.cancellations)),
            ("upstream_failures", Double(s.failures)),
            ("upstream_in_flight", Double(memo.inFlightCount)),
            ("upstream_transforms", Double(initialization.resource?.names.count ?? 0)),
            ("upstream_list_failures", Double(listFailures)),
        ]
        for (i, u) in upstreamStats.enumerated() {
            figures.append(contentsOf: u.figures(prefix: "upstream_\(i)_"))
        }
        return figures
    }

    /// The endpoint each `upstream_<i>_` figure describes, in order.
    public var upstreamEndpoints: [Endpoint] { configuration.upstreams }
}

/// The transforms an upstream serves: names sorted, with their bytes for allocation-free lookup.
struct UpstreamCatalog {
    let names: [String]
    let bytes: [[UInt8]]

    init(names: [String]) {
        self.names = Array(Set(names)).sorted()
        self.bytes = self.names.map { Array($0.utf8) }
    }

    /// True when `name` is in the list, byte for byte.
    func contains(_ name: UnsafeRawBufferPointer) -> Bool {
        guard let base = name.baseAddress else { return false }
        for b in bytes where b.count == name.count {
            // memcmp: the generic elementsEqual compared byte by byte through iterators.
            if b.withUnsafeBytes({ memcmp($0.baseAddress!, base, name.count) == 0 }) { return true }
        }
        return false
    }
}

/// A cache key: the transform name and the exact text bytes.
///
/// A stored key owns its bytes; a *probe* (``init(probing:text:)``) looks a request up in the
/// cache on the request's own buffers, without copying them, and is never stored.
struct ProxyCacheKey: Hashable {
    /// The name's bytes followed by the text's (empty for a probe).
    let bytes: [UInt8]
    let nameCount: Int
    /// The bytes' hash, computed once: a miss looks the key up three times (cache, flights in
    /// and out), and hashing 80 bytes costs 400 instructions each time (callgrind).
    let hash: Int
    /// A probe's buffers: the request's, valid only during the call that made the probe.
    /// (Unsafe pointers: copying the request to look it up was 600 instructions a hit, callgrind.)
    let probeName: UnsafeRawBufferPointer?
    let probeText: UnsafeRawBufferPointer?

    /// A probe for `name` and `text`: valid only while they are.
    init(probing name: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer) {
        bytes = []
        nameCount = name.count
        probeName = name
        probeText = text
        hash = Self.hash(name, text)
    }

    /// The stored key for what `probe` looked up (its hash reused).
    init(owning probe: ProxyCacheKey) {
        let name = probe.probeName!
        let text = probe.probeText!
        nameCount = name.count
        hash = probe.hash
        probeName = nil
        probeText = nil
        bytes = [UInt8](unsafeUninitializedCapacity: name.count + text.count) { buffer, count in
            let out = UnsafeMutableRawBufferPointer(buffer)
            if let base = name.baseAddress, !name.isEmpty { out.baseAddress!.copyMemory(from: base, byteCount: name.count) }
            if let base = text.baseAddress, !text.isEmpty {
                (out.baseAddress! + name.count).copyMemory(from: base, byteCount: text.count)
            }
            count = name.count + text.count
        }
    }

    /// A stored key for `name` and `text`.
    init(name: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer) {
        self.init(owning: ProxyCacheKey(probing: name, text: text))
    }

    /// Hashed in one go per part (the synthesized conformance would feed the bytes one by one).
    static func hash(_ name: UnsafeRawBufferPointer, _ text: UnsafeRawBufferPointer) -> Int {
        var hasher = Hasher()
        hasher.combine(name.count)
        hasher.combine(bytes: name)
        hasher.combine(bytes: text)
        return hasher.finalize()
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(hash)
    }

    /// The table's hash: the stored one, already randomly seeded, mixed with the table's seed
    /// (the default would run SipHash again over it on every lookup; callgrind, a hit and three
    /// lookups per miss).
    func _rawHashValue(seed: Int) -> Int {
        hash ^ seed
    }

    /// Calls `body` with the name's and the text's bytes, wherever they are.
    func withParts<R>(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> R) -> R {
        if let probeName, let probeText { return body(probeName, probeText) }
        return bytes.withUnsafeBytes { all in
            body(UnsafeRawBufferPointer(rebasing: all[..<nameCount]), UnsafeRawBufferPointer(rebasing: all[nameCount...]))
        }
    }

    static func == (a: ProxyCacheKey, b: ProxyCacheKey) -> Bool {
        guard a.hash == b.hash, a.nameCount == b.nameCount else { return false }
        return a.withParts { an, at in
            b.withParts { bn, bt in
                at.count == bt.count && an.elementsEqual(bn) && (at.count == 0 || memcmp(at.baseAddress!, bt.baseAddress!, at.count) == 0)
            }
        }
    }

    var name: String { withParts { n, _ in String(decoding: n, as: UTF8.self) } }
}

/// One upstream's attempts, failures and recent latencies (the last 1,024 attempts).
final class UpstreamStatistics {
    let endpoint: Endpoint
    // Unchecked: written once per upstream reply in short accesses; the checks cost more than
    // the recording (callgrind).
    @exclusivity(unchecked) var attempts = 0
    @exclusivity(unchecked) var failures = 0
    @exclusivity(unchecked) var latencies: [Double] = []
    @exclusivity(unchecked) var next = 0
    static let window = 1024

    init(endpoint: Endpoint) { self.endpoint = endpoint }

    func record(elapsed: Duration, failed: Bool) {
        attempts += 1
        if failed { failures += 1 }
        let ms = elapsed.seconds * 1000
        if latencies.count < Self.window {
            latencies.append(ms)
        } else {
            latencies[next] = ms
            next = (next + 1) % Self.window
        }
    }

    func figures(prefix: String) -> [(name: String, value: Double)] {
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
            return sorted[min(max(rank, 0), sorted.count - 1)]
        }
        return [
            (prefix + "attempts", Double(attempts)),
            (prefix + "failures", Double(failures)),
            (prefix + "latency_p50_ms", percentile(50)),
            (prefix + "latency_p90_ms", percentile(90)),
            (prefix + "latency_p99_ms", percentile(99)),
        ]
    }
}

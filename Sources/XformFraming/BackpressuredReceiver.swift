import XformCore

/// The read back-pressure both framing receivers share: reading from the transport pauses while
/// the write buffer is over its high watermark (a peer that does not read its replies), while
/// delivery is paused with more than the backlog limit buffered, or for good once
/// ``stopReading()`` was called; it resumes when none holds. Keeping the causes in one place
/// means none can resume what another paused: subclasses never pause the transport themselves.
open class BackpressuredReceiver: BaseProtocol {
    private var writeBlocked = false
    private var backlogBlocked = false
    private var stopped = false
    private var readingPaused = false

    public override init() { super.init() }

    open override func writeBufferFull() {
        writeBlocked = true
        updateReading()
    }

    open override func writeBufferDrained() {
        writeBlocked = false
        updateReading()
    }

    /// The receive engine's backlog went over (true) or back under (false) its limit.
    func backlogChanged(overLimit: Bool) {
        backlogBlocked = overLimit
        updateReading()
    }

    /// Stops reading from the transport for good (nothing read later would be used).
    public func stopReading() {
        stopped = true
        updateReading()
    }

    private func updateReading() {
        let shouldPause = writeBlocked || backlogBlocked || stopped
        guard shouldPause != readingPaused, let transport else { return }
        readingPaused = shouldPause
        if shouldPause { transport.pauseReading() } else { transport.resumeReading() }
    }
}

import XformCore

/// The read back-pressure both framing receivers share: reading from the transport pauses while
/// the write buffer is over its high watermark (a peer that does not read its replies) or while
/// delivery is paused with more than the backlog limit buffered, and resumes when neither holds.
/// Keeping the two causes in one place means neither can resume what the other paused.
open class BackpressuredReceiver: BaseProtocol {
    private var writeBlocked = false
    private var backlogBlocked = false
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

    private func updateReading() {
        let shouldPause = writeBlocked || backlogBlocked
        guard shouldPause != readingPaused, let transport else { return }
        readingPaused = shouldPause
        if shouldPause { transport.pauseReading() } else { transport.resumeReading() }
    }
}

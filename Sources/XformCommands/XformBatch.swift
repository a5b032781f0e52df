import XformClient
import XformCore

/// `xform` with many files: the requests go through a ``ResizableDispatchQueue`` of width
/// `--jobs`, so at most that many are in flight, and a ``DeferredListObserver`` of their
/// Deferreds drives the progress line.
struct XformBatch {
    /// Where progress goes, and how: in place on a terminal, a line per update otherwise.
    struct Progress {
        var terminal: Bool
        var write: (String) -> Void
    }

    /// Starts one request per readable input (`texts[i]` nil for an input that failed to read,
    /// counted as failed at once).
    ///
    /// - Returns: a Deferred firing, once every request has finished, with each input's result in
    ///   input order (nil for the unreadable ones); it never fails.
    static func start(
        texts: [String?], name: String, jobs: Int, proxy: TransformProxy, clock: any ReactorTime,
        progress: Progress?
    ) -> Deferred<[Result<String, TransformProxyError>?]> {
        let queue = ResizableDispatchQueue<String, String>(width: jobs, clock: clock) { text in
            proxy.xform(name, text)
        }
        let observer = DeferredListObserver<String>(consumeErrors: true)
        var calls: [Deferred<String>] = []
        for text in texts {
            let call: Deferred<String>
            if let text {
                // A stopped queue is the only reason `put` throws, and this one is never stopped.
                call = try! queue.put(text).map { job in job.value! }
            } else {
                call = fail(ReadFailed())
            }
            calls.append(call)
        }
        if let progress {
            let total = texts.count
            func show() {
                let line = "\(observer.successCount + observer.failureCount)/\(total) done, \(observer.failureCount) failed"
                progress.write(progress.terminal ? "\r\u{1B}[K" + line : line + "\n")
            }
            show()
            observer.observe { _, _ in show() }
        }
        for call in calls { observer.append(call) }
        return deferredList(calls, consumeErrors: true).map { list in
            if progress?.terminal == true { progress?.write("\n") }
            withExtendedLifetime(queue) {}
            return (list.results ?? []).map { result -> Result<String, TransformProxyError>? in
                switch result {
                case .success(let text): return .success(text)
                case .failure(let error as DispatchJobFailure<String, String>):
                    return .failure(TransformProxyError.from(error.underlying))
                case .failure(is ReadFailed): return nil
                case .failure(let error): return .failure(TransformProxyError.from(error))
                }
            }
        }
    }

    /// Stands for an input that could not be read (its own failure is reported separately).
    struct ReadFailed: Error {}
}

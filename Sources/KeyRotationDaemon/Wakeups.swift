import Dispatch
import Foundation

/// Signals delivered as calls on a private queue instead of asynchronous handlers,
/// so the loop receives them as ordinary events. Installed before the daemon says
/// it is ready: an early SIGHUP must not kill it.
final class SignalSources {
    private let sources: [any DispatchSourceSignal]

    init(_ signals: [Int32], queue: DispatchQueue, handler: @escaping @Sendable (Int32) -> Void) {
        sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { handler(number) }
            source.resume()
            return source
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}

/// One wall-clock alarm, re-armed by the loop after every event for its next
/// deadline. Between deadlines nothing runs: no polling.
final class WakeTimer {
    private let timer: any DispatchSourceTimer

    init(queue: DispatchQueue, handler: @escaping @Sendable () -> Void) {
        timer = DispatchSource.makeTimerSource(queue: queue)
        timer.setEventHandler(handler: handler)
        timer.schedule(wallDeadline: .distantFuture)
        timer.resume()
    }

    /// Fires once at `date` (at once if it is past); nil disarms.
    func schedule(at date: Date?) {
        guard let date else {
            timer.schedule(wallDeadline: .distantFuture)
            return
        }
        let seconds = max(0, date.timeIntervalSinceNow)
        timer.schedule(wallDeadline: .now() + seconds, leeway: .milliseconds(5))
    }

    func cancel() {
        timer.cancel()
    }
}

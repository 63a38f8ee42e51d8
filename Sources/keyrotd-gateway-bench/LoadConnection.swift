import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Where requests go and what they carry: the same bytes on every path.
struct Target: Sendable {
    var host: String
    var port: Int
    var path: String
    var bearer: String
    var body: ByteBuffer
    var stream: Bool

    /// `http://HOST:PORT/PATH` (plain HTTP on loopback is all the benchmark needs).
    init(url: String, bearer: String, body: ByteBuffer, stream: Bool) throws(UsageError) {
        guard url.hasPrefix("http://") else { throw UsageError("only http:// URLs: \(url)") }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]) else {
            throw UsageError("the URL needs a port: \(url)")
        }
        self.host = String(authority[..<colon])
        self.port = port
        self.path = path.isEmpty ? "/" : String(path)
        self.bearer = bearer
        self.body = body
        self.stream = stream
    }

    var head: HTTPRequestHead {
        let headers = HTTPHeaders([
            ("Host", "\(host):\(port)"),
            ("Authorization", "Bearer \(bearer)"),
            ("Content-Type", "application/json"),
            ("Accept", stream ? "text/event-stream" : "application/json"),
            ("Content-Length", String(body.readableBytes)),
        ])
        return HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)
    }
}

/// When a connection sends: the measured window, the pace (nil: the next request as soon
/// as the answer is in) and how many requests at most.
struct Plan: Sendable {
    var firstSend: NIODeadline
    var measureFrom: NIODeadline
    var measureUntil: NIODeadline
    var interval: TimeAmount?
    var maxRequests: Int?
}

/// What every connection measured, merged.
struct Samples: Sendable {
    /// Request written → last byte of the answer, ns, for requests sent inside the window.
    var latencies: [Int64] = []
    /// Request written → first byte of the answer's body, ns.
    var firstBytes: [Int64] = []
    /// Answers that were not 200 or not whole.
    var bad = 0
    /// Connections that failed or were closed by the other side before the end.
    var lost = 0
    var statuses: [UInt: Int] = [:]
    /// Every answer, warm-up and tail included (CPU per request divides by this).
    var answers = 0

    mutating func merge(_ other: Samples) {
        latencies += other.latencies
        firstBytes += other.firstBytes
        bad += other.bad
        lost += other.lost
        statuses.merge(other.statuses, uniquingKeysWith: +)
        answers += other.answers
    }
}

/// Shared by the connections of one run.
final class Collector: Sendable {
    let samples = NIOLockedValueBox(Samples())
    /// Connections whose answer has started (its first body byte is in).
    let opened = NIOLockedValueBox(0)
}

/// One keep-alive connection sending `target`'s request over and over per `plan`,
/// timing each answer; nothing is allocated per request but the answer's bytes.
final class LoadConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let target: Target
    let head: HTTPRequestHead
    let plan: Plan
    let collector: Collector
    let done: EventLoopPromise<Void>
    private var local = Samples()
    private var sent = 0
    private var sentAt = NIODeadline.distantPast
    private var firstByteAt: NIODeadline?
    private var nextSlot: NIODeadline
    private var status: HTTPResponseStatus = .ok
    private var answer = ByteBuffer()
    private var inFlight = false
    private var finished = false

    init(target: Target, plan: Plan, collector: Collector, done: EventLoopPromise<Void>) {
        self.target = target
        self.head = target.head
        self.plan = plan
        self.collector = collector
        self.done = done
        self.nextSlot = plan.firstSend
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { schedule(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        schedule(context: context)
        context.fireChannelActive()
    }

    private func schedule(context: ChannelHandlerContext) {
        let wait = nextSlot - .now()
        if wait <= .zero {
            send(context: context)
        } else {
            context.eventLoop.assumeIsolated().scheduleTask(deadline: nextSlot) { self.send(context: context) }
        }
    }

    private func send(context: ChannelHandlerContext) {
        guard !finished, context.channel.isActive else { return }
        sent += 1
        inFlight = true
        firstByteAt = nil
        answer.clear()
        sentAt = .now()
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(target.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
        case .body(var part):
            if firstByteAt == nil {
                firstByteAt = .now()
                if plan.maxRequests != nil { collector.opened.withLockedValue { $0 += 1 } }
            }
            answer.writeBuffer(&part)
        case .end:
            let end = NIODeadline.now()
            inFlight = false
            local.statuses[status.code, default: 0] += 1
            local.answers += 1
            // Whole answers only: a JSON answer carries usage, a stream ends with [DONE]
            // (LiteLLM drops usage from streams unless the client asks for it).
            let ok = status == .ok && StubHandler.contains(answer.readableBytesView, target.stream ? "[DONE]" : "\"usage\"")
            if sentAt >= plan.measureFrom, sentAt < plan.measureUntil {
                if ok {
                    local.latencies.append((end - sentAt).nanoseconds)
                    local.firstBytes.append(((firstByteAt ?? end) - sentAt).nanoseconds)
                } else {
                    local.bad += 1
                }
            }
            if end >= plan.measureUntil || plan.maxRequests.map({ sent >= $0 }) == true {
                finish(context: context)
                return
            }
            if let interval = plan.interval {
                nextSlot = nextSlot + interval
                if nextSlot < end { nextSlot = end }
            } else {
                nextSlot = end
            }
            schedule(context: context)
        }
    }

    private func finish(context: ChannelHandlerContext) {
        guard !finished else { return }
        finished = true
        collector.samples.withLockedValue { $0.merge(local) }
        context.close(promise: nil)
        done.succeed()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished {
            local.lost += 1
            if inFlight, sentAt >= plan.measureFrom, sentAt < plan.measureUntil { local.bad += 1 }
            finish(context: context)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

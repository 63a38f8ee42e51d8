import NIOCore
import NIOHTTP1
import NIOPosix

/// A stand-in for the provider that costs next to nothing per request, so the benchmark
/// measures the proxy between client and upstream, not the upstream (the Python local
/// server spends milliseconds per request). It answers any POST ending in
/// `/chat/completions` in Mistral's shapes, with any bearer: one `chat.completion` JSON
/// with `usage`, or with `"stream": true` a server-sent-event stream over chunked
/// encoding, one `chat.completion.chunk` per event, `usage` on the last, then
/// `data: [DONE]`. A body containing `slow-stream` gets a stream that stays open
/// (`slowChunks` events, `slowInterval` apart), for the open-streams measurement.
struct StubReplies: Sendable {
    var json: ByteBuffer
    var chunks: [ByteBuffer]
    var slowChunks: [ByteBuffer]
    var slowInterval: TimeAmount

    init(fastChunks: Int, slowChunks: Int, slowInterval: TimeAmount) {
        let usage = #""usage":{"prompt_tokens":9,"completion_tokens":8,"total_tokens":17}"#
        json = ByteBuffer(
            string: #"{"id":"cmpl-bench","object":"chat.completion","created":1764720000,"model":"mistral-small-latest","choices":[{"index":0,"message":{"role":"assistant","content":"hello there from the stand-in upstream","tool_calls":null},"finish_reason":"stop"}],"#
                + usage + "}")
        func events(_ count: Int) -> [ByteBuffer] {
            (0..<count).map { index in
                let last = index == count - 1
                let delta = index == 0 ? #"{"role":"assistant","content":"hello"}"# : #"{"content":" word"}"#
                var event =
                    #"data: {"id":"cmpl-bench","object":"chat.completion.chunk","created":1764720000,"model":"mistral-small-latest","choices":[{"index":0,"delta":"#
                    + delta + #","finish_reason":"# + (last ? #""stop"}]"# : "null}]")
                if last { event += "," + usage }
                event += "}\n\n"
                if last { event += "data: [DONE]\n\n" }
                return ByteBuffer(string: event)
            }
        }
        self.chunks = events(max(1, fastChunks))
        self.slowChunks = events(max(1, slowChunks))
        self.slowInterval = slowInterval
    }
}

/// Starts the stub on 127.0.0.1:`port` (0: any); returns the channel (its local port is
/// the one to use).
func startStub(port: Int, threads: Int, replies: StubReplies) async throws -> any Channel {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    return try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 4096)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                try channel.pipeline.syncOperations.addHandler(StubHandler(replies: replies))
            }
        }
        .bind(host: "127.0.0.1", port: port).get()
}

final class StubHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let replies: StubReplies
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(replies: StubReplies) {
        self.replies = replies
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            guard let head else { return }
            respond(context: context, head: head)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let keepAlive = head.isKeepAlive
        guard head.method == .POST, head.uri.hasSuffix("/chat/completions") else {
            let answer = ByteBuffer(string: #"{"object":"error","message":"not here","type":"not_found","param":null,"code":"404"}"#)
            send(context: context, status: .notFound, body: answer, keepAlive: keepAlive)
            return
        }
        let bytes = body.readableBytesView
        guard Self.asksForStream(bytes) else {
            send(context: context, status: .ok, body: replies.json, keepAlive: keepAlive)
            return
        }
        var headers = HTTPHeaders([("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
        if Self.contains(bytes, "slow-stream") {
            streamSlowly(context: context, index: 0, keepAlive: keepAlive)
        } else {
            for chunk in replies.chunks {
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
            }
            finish(context: context, keepAlive: keepAlive)
        }
    }

    /// One event now, the next after `slowInterval`, until the last (or the client left).
    private func streamSlowly(context: ChannelHandlerContext, index: Int, keepAlive: Bool) {
        guard context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(replies.slowChunks[index]))), promise: nil)
        guard index + 1 < replies.slowChunks.count else {
            finish(context: context, keepAlive: keepAlive)
            return
        }
        context.eventLoop.assumeIsolated().scheduleTask(in: replies.slowInterval) {
            self.streamSlowly(context: context, index: index + 1, keepAlive: keepAlive)
        }
    }

    private func send(context: ChannelHandlerContext, status: HTTPResponseStatus, body: ByteBuffer, keepAlive: Bool) {
        var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(body.readableBytes))])
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        finish(context: context, keepAlive: keepAlive)
    }

    private func finish(context: ChannelHandlerContext, keepAlive: Bool) {
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    /// `"stream"` then optional spaces, `:`, optional spaces, `true` (the proxies may
    /// re-encode the body with or without spaces).
    static func asksForStream(_ bytes: ByteBufferView) -> Bool {
        let key = Array(#""stream""#.utf8)
        let value = Array("true".utf8)
        var index = bytes.startIndex
        while let found = firstIndex(of: key, in: bytes, from: index) {
            var cursor = found + key.count
            while cursor < bytes.endIndex, bytes[cursor] == UInt8(ascii: " ") { cursor += 1 }
            if cursor < bytes.endIndex, bytes[cursor] == UInt8(ascii: ":") {
                cursor += 1
                while cursor < bytes.endIndex, bytes[cursor] == UInt8(ascii: " ") { cursor += 1 }
                if firstIndex(of: value, in: bytes, from: cursor) == cursor { return true }
            }
            index = found + 1
        }
        return false
    }

    static func contains(_ bytes: ByteBufferView, _ text: String) -> Bool {
        firstIndex(of: Array(text.utf8), in: bytes, from: bytes.startIndex) != nil
    }

    static func firstIndex(of needle: [UInt8], in bytes: ByteBufferView, from start: Int) -> Int? {
        guard !needle.isEmpty, bytes.endIndex - start >= needle.count else { return nil }
        var index = start
        while index <= bytes.endIndex - needle.count {
            var matched = true
            for offset in 0..<needle.count where bytes[index + offset] != needle[offset] {
                matched = false
                break
            }
            if matched { return index }
            index += 1
        }
        return nil
    }
}

import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

// The gateway's benchmarks behind `scripts/bench gateway` (measurements, never asserted):
//
//     upstream --port-file F [--threads 2] [--chunks 6] [--slow-chunks 20] [--slow-interval-ms 1000]
//         the stand-in provider (UpstreamStub.swift) on 127.0.0.1, its port written to F
//     load --url U --bearer-file F --body-file B [--stream] [--connections 64] [--rate R]
//          [--duration 10] [--warmup 2] [--threads 1]
//         CONNECTIONS keep-alive connections sending B to U (with R: R requests per second
//         in all, evenly spaced; without: each sends again as soon as its answer is in);
//         prints one line: requests per second, latency and first-body-byte percentiles
//     streams --url U --bearer-file F --body-file B [--count 1000] [--watch-pid P] [--timeout 90]
//         COUNT connections each holding one streamed answer open at once; prints when all
//         were open and the RSS of P and its child processes then (and the highest seen)
//
// Secrets (bearer tokens) come from files, never argv.

struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

struct Options {
    var values: [String: String] = [:]
    var flags: Set<String> = []

    init(_ arguments: ArraySlice<String>) throws(UsageError) {
        var rest = arguments
        while let name = rest.popFirst() {
            guard name.hasPrefix("--") else { throw UsageError("unexpected argument \(name)") }
            let key = String(name.dropFirst(2))
            if key == "stream" {
                flags.insert(key)
            } else {
                guard let value = rest.popFirst() else { throw UsageError("\(name) needs a value") }
                values[key] = value
            }
        }
    }

    func string(_ name: String) throws(UsageError) -> String {
        guard let value = values[name] else { throw UsageError("--\(name) is required") }
        return value
    }

    func int(_ name: String, _ fallback: Int) throws(UsageError) -> Int {
        guard let text = values[name] else { return fallback }
        guard let value = Int(text), value >= 0 else { throw UsageError("--\(name) must be a whole number: \(text)") }
        return value
    }

    func file(_ name: String) throws -> String {
        try String(contentsOfFile: try string(name), encoding: .utf8)
    }

    func target() throws -> Target {
        let bearer = try file("bearer-file").trimmingCharacters(in: .whitespacesAndNewlines)
        return try Target(
            url: try string("url"), bearer: bearer, body: ByteBuffer(string: try file("body-file")),
            stream: flags.contains("stream"))
    }
}

/// The value at fraction `p` of `sorted` (nearest rank), in µs with one decimal.
func micros(_ sorted: [Int64], _ p: Double) -> String {
    guard !sorted.isEmpty else { return "nan" }
    let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
    return String(format: "%.1f", Double(sorted[max(0, index)]) / 1000)
}

/// Opens `count` connections to `target`, each driven by a `LoadConnection` with
/// `plan(i)`; returns once every connection has finished.
func drive(
    _ target: Target, count: Int, threads: Int, collector: Collector, plan: (Int) -> Plan,
    whileRunning: @escaping @Sendable () async -> Void = {}
) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    var finished: [EventLoopFuture<Void>] = []
    for index in 0..<count {
        let loop = group.next()
        let done = loop.makePromise(of: Void.self)
        let connectionPlan = plan(index)
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        LoadConnection(target: target, plan: connectionPlan, collector: collector, done: done))
                }
            }
        do {
            _ = try await bootstrap.connect(host: target.host, port: target.port).get()
        } catch {
            collector.samples.withLockedValue { $0.lost += 1 }
            done.succeed()
        }
        finished.append(done.futureResult)
    }
    async let watching: Void = whileRunning()
    for future in finished { try await future.get() }
    await watching
    try await group.shutdownGracefully()
}

func runLoad(_ options: Options) async throws {
    let target = try options.target()
    let connections = max(1, try options.int("connections", 64))
    let rate = try options.int("rate", 0)
    let duration = TimeAmount.seconds(Int64(try options.int("duration", 10)))
    let warmup = TimeAmount.seconds(Int64(try options.int("warmup", 2)))
    let start = NIODeadline.now() + .milliseconds(200)
    let interval: TimeAmount? = rate > 0 ? .nanoseconds(Int64(1e9 * Double(connections) / Double(rate))) : nil
    let collector = Collector()
    try await drive(target, count: connections, threads: max(1, try options.int("threads", 1)), collector: collector) {
        index in
        // Paced connections start staggered, so the requests are evenly spaced overall.
        let offset = interval.map { TimeAmount.nanoseconds($0.nanoseconds * Int64(index) / Int64(connections)) } ?? .zero
        return Plan(
            firstSend: start + offset, measureFrom: start + warmup, measureUntil: start + warmup + duration,
            interval: interval, maxRequests: nil)
    }
    let samples = collector.samples.withLockedValue { $0 }
    let latencies = samples.latencies.sorted()
    let firstBytes = samples.firstBytes.sorted()
    let seconds = Double(duration.nanoseconds) / 1e9
    print(
        "requests=\(latencies.count) answers=\(samples.answers) rps=\(String(format: "%.0f", Double(latencies.count) / seconds)) bad=\(samples.bad) lost=\(samples.lost)"
            + " p50_us=\(micros(latencies, 0.5)) p90_us=\(micros(latencies, 0.9)) p99_us=\(micros(latencies, 0.99)) max_us=\(micros(latencies, 1))"
            + " ttfb_p50_us=\(micros(firstBytes, 0.5)) ttfb_p99_us=\(micros(firstBytes, 0.99))"
            + " statuses=\(samples.statuses.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ","))")
}

/// What the open-streams watcher saw.
struct StreamsReport: Sendable {
    /// When every stream was open at once, ms after the start (-1: never).
    var allOpenMs = -1
    var rssAllOpen = 0
    var rssMax = 0
    var mostOpen = 0
}

func runStreams(_ options: Options) async throws {
    let target = try options.target()
    let count = max(1, try options.int("count", 1000))
    let watched = Int32(try options.int("watch-pid", 0))
    let timeout = TimeAmount.seconds(Int64(try options.int("timeout", 90)))
    let collector = Collector()
    let begin = NIODeadline.now()
    let report = NIOLockedValueBox(StreamsReport())
    try await drive(
        target, count: count, threads: max(1, try options.int("threads", 1)), collector: collector,
        plan: { _ in
            Plan(firstSend: .now(), measureFrom: begin, measureUntil: begin + timeout, interval: nil, maxRequests: 1)
        },
        whileRunning: {
            while NIODeadline.now() < begin + timeout {
                let opened = collector.opened.withLockedValue { $0 }
                let ended = collector.samples.withLockedValue { $0.latencies.count + $0.bad + $0.lost }
                let rss = watched > 0 ? ProcessMemory.treeRSS(root: watched) : 0
                report.withLockedValue {
                    $0.rssMax = max($0.rssMax, rss)
                    $0.mostOpen = max($0.mostOpen, opened - ended)
                    if $0.allOpenMs < 0, opened - ended >= count {
                        $0.allOpenMs = Int((NIODeadline.now() - begin).nanoseconds / 1_000_000)
                        $0.rssAllOpen = rss
                    }
                }
                if ended >= count { break }
                try? await Task.sleep(for: .milliseconds(100))
            }
        })
    let samples = collector.samples.withLockedValue { $0 }
    let result = report.withLockedValue { $0 }
    print(
        "streams=\(count) completed=\(samples.latencies.count) bad=\(samples.bad) lost=\(samples.lost) most_open=\(result.mostOpen)"
            + " all_open_after_ms=\(result.allOpenMs) rss_all_open_kb=\(result.rssAllOpen) rss_max_kb=\(result.rssMax)"
            + " ttfb_p50_us=\(micros(samples.firstBytes.sorted(), 0.5)) ttfb_p99_us=\(micros(samples.firstBytes.sorted(), 0.99))")
}

func runUpstream(_ options: Options) async throws {
    let replies = StubReplies(
        fastChunks: try options.int("chunks", 6), slowChunks: try options.int("slow-chunks", 20),
        slowInterval: .milliseconds(Int64(try options.int("slow-interval-ms", 1000))))
    let channel = try await startStub(port: try options.int("port", 0), threads: max(1, try options.int("threads", 2)), replies: replies)
    let port = channel.localAddress?.port ?? 0
    let portFile = try options.string("port-file")
    try "\(port)\n".write(toFile: portFile + ".tmp", atomically: false, encoding: .utf8)
    guard rename(portFile + ".tmp", portFile) == 0 else { throw UsageError("cannot write \(portFile)") }
    try await channel.closeFuture.get()
}

let arguments = CommandLine.arguments
do {
    guard arguments.count >= 2 else { throw UsageError("usage: keyrotd-gateway-bench upstream|load|streams OPTIONS") }
    let options = try Options(arguments.dropFirst(2))
    switch arguments[1] {
    case "upstream": try await runUpstream(options)
    case "load": try await runLoad(options)
    case "streams": try await runStreams(options)
    default: throw UsageError("unknown command \(arguments[1]); upstream, load or streams")
    }
} catch {
    FileHandle.standardError.write(Data("keyrotd-gateway-bench: \(error)\n".utf8))
    exit(64)
}

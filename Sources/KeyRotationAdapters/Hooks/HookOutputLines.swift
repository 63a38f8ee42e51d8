#if canImport(Glibc)
import Glibc
#endif

/// One output stream of a hook (stdout or stderr) cut into log lines, with the
/// secret redacted and the amount kept bounded.
///
/// Contract:
/// - A line ends at "\n"; a trailing "\r" is dropped; empty lines are skipped.
///   Whatever is left when the stream ends is a last line of its own.
/// - Every occurrence of the secret's bytes becomes `<redacted>`. A line cut short
///   (longer than the room left) also has a trailing piece that starts the secret
///   redacted, so a cut never reveals part of it.
/// - At most `limit` bytes of line text are handed out per stream. The first line
///   that does not fit yields one `.truncated` item; it and every later line are
///   dropped, in order, so the kept output never has gaps. Input is still
///   consumed in full: the caller keeps draining the pipe and the hook never
///   blocks on a full pipe because of the limit.
/// - Memory stays bounded by about `limit` bytes whatever the hook writes.
struct HookOutputLines {
    enum Item: Equatable, Sendable {
        case line(String)
        /// Output went past the limit; nothing more is logged for this stream.
        case truncated
    }

    /// How much of the last line is remembered for a failure message.
    static let lastLineLimit = 512
    static let redactionMarker = Array("<redacted>".utf8)

    private let limit: Int
    private let secret: [UInt8]
    private var pending: [UInt8] = []
    /// The current line had more bytes than `pending` kept.
    private var pendingWasCut = false
    private var kept = 0
    private(set) var truncated = false
    /// The last non-empty line as read, at most `lastLineLimit` bytes, kept even
    /// past the limit so a failure can quote what the hook said last; redacted
    /// only when asked for (a flood of lines must not pay for it on every line).
    private var lastLineBytes: [UInt8] = []
    /// The last line went on past `lastLineBytes`.
    private var lastLineWasCut = false

    /// The last non-empty line, redacted and at most `lastLineLimit` bytes.
    var lastLine: String? {
        lastLineBytes.isEmpty ? nil : Self.redact(lastLineBytes, secret: secret, cut: lastLineWasCut)
    }

    /// `secret` nil or empty: nothing to redact.
    init(limit: Int, secret: [UInt8]?) {
        self.limit = max(0, limit)
        self.secret = secret ?? []
    }

    mutating func consume(_ bytes: UnsafeRawBufferPointer) -> [Item] {
        var items: [Item] = []
        guard let base = bytes.baseAddress else { return items }
        var offset = 0
        while offset < bytes.count,
            let found = memchr(base + offset, CInt(UInt8(ascii: "\n")), bytes.count - offset)
        {
            let newline = base.distance(to: UnsafeRawPointer(found))
            append(UnsafeRawBufferPointer(start: base + offset, count: newline - offset))
            completeLine(into: &items)
            offset = newline + 1
        }
        append(UnsafeRawBufferPointer(start: base + offset, count: bytes.count - offset))
        return items
    }

    /// The stream ended: an unterminated last line is logged like any other.
    mutating func finish() -> [Item] {
        var items: [Item] = []
        if !pending.isEmpty || pendingWasCut { completeLine(into: &items) }
        return items
    }

    /// Room for the current line: what the limit still allows, and never less than
    /// the part remembered as the last line.
    private var capacity: Int {
        truncated ? Self.lastLineLimit : max(limit - kept, Self.lastLineLimit)
    }

    private mutating func append(_ chunk: UnsafeRawBufferPointer) {
        let room = max(0, capacity - pending.count)
        if chunk.count > room {
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk.prefix(room)))
            pendingWasCut = true
        } else {
            pending.append(contentsOf: chunk)
        }
    }

    private mutating func completeLine(into items: inout [Item]) {
        defer {
            pending.removeAll(keepingCapacity: true)
            pendingWasCut = false
        }
        var line = pending[...]
        if !pendingWasCut, line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        guard !line.isEmpty else { return }
        if !truncated, !pendingWasCut, kept + line.count <= limit {
            kept += line.count
            items.append(.line(Self.redact(line, secret: secret, cut: false)))
        } else if !truncated {
            truncated = true
            items.append(.truncated)
        }
        let remembered = line.prefix(Self.lastLineLimit)
        lastLineBytes.removeAll(keepingCapacity: true)
        lastLineBytes.append(contentsOf: remembered)
        lastLineWasCut = pendingWasCut || remembered.count < line.count
    }

    /// The bytes as text (invalid UTF-8 becomes U+FFFD) with every occurrence of
    /// `secret` replaced by `<redacted>`. `cut`: the bytes stop where the real line
    /// went on, so a trailing start of the secret is redacted too.
    static func redact(_ bytes: some Collection<UInt8>, secret: [UInt8], cut: Bool) -> String {
        let source = Array(bytes)
        guard let first = secret.first else { return String(decoding: source, as: UTF8.self) }
        var result: [UInt8] = []
        result.reserveCapacity(source.count)
        var index = 0
        while index < source.count {
            let remaining = source.count - index
            if source[index] == first {
                if remaining >= secret.count, source[index..<(index + secret.count)].elementsEqual(secret) {
                    result.append(contentsOf: redactionMarker)
                    index += secret.count
                    continue
                }
                if cut, remaining < secret.count, source[index...].elementsEqual(secret.prefix(remaining)) {
                    result.append(contentsOf: redactionMarker)
                    break
                }
            }
            result.append(source[index])
            index += 1
        }
        return String(decoding: result, as: UTF8.self)
    }
}

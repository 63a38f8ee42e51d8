/// Token counts the provider reported (`UsageInfo`).
public struct Usage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }

    /// Top-level `usage` of a non-streamed JSON response body; nil when absent or malformed.
    public static func inResponse(_ bytes: [UInt8]) -> Usage? {
        // STUB
        nil
    }
}

/// Reads a server-sent-event stream as it passes through (bytes are forwarded
/// unchanged by the caller) and remembers the last `usage` a `data:` event carried.
/// Events may be split across chunks anywhere, lines end in LF or CRLF.
public struct StreamUsageScanner: Sendable {
    public private(set) var usage: Usage?
    /// `data: [DONE]` was seen.
    public private(set) var finished = false
    /// How many `data:` events with a JSON payload passed.
    public private(set) var events = 0

    public init() {}

    public mutating func consume(_ bytes: some Sequence<UInt8>) {
        // STUB
    }
}

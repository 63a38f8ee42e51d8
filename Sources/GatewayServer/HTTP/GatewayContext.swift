import Hummingbird
import NIOCore

/// Per-request context: Hummingbird's core storage plus the connection, so the
/// responder can ask a unix-socket connection who is at the other end.
public struct GatewayContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// The gateway reads bodies itself with its own limit (`max_body_bytes`).
    public var maxUploadSize: Int { .max }

    /// Whether the connection came in on a unix-socket listener.
    public var isUnixSocket: Bool {
        if case .unixDomainSocket = channel.localAddress { return true }
        return false
    }
}

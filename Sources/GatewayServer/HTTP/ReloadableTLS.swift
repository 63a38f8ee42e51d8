import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// The TLS context TCP listeners use, replaceable while they run: SIGHUP loads the
/// certificate and key files again and new connections get the new context, while
/// established ones keep theirs.
public final class TLSContextHolder: Sendable {
    private let box: NIOLockedValueBox<NIOSSLContext>

    public init(_ context: NIOSSLContext) {
        box = NIOLockedValueBox(context)
    }

    public var current: NIOSSLContext { box.withLockedValue { $0 } }

    public func replace(with context: NIOSSLContext) {
        box.withLockedValue { $0 = context }
    }

    /// A server context from PEM files: TLS 1.2 or later, the certificate chain as the file holds it.
    public static func context(certificatePath: String, keyPath: String) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: configuration)
    }
}

/// HTTP/1.1 behind TLS with the holder's current context at each new connection.
struct ReloadableTLSChannel<Base: HTTPChannelHandler>: HTTPChannelHandler {
    typealias Value = Base.Value
    let base: Base
    let contexts: TLSContextHolder

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let context = contexts.current
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Base.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }

    var responder: HTTPChannelHandler.Responder { base.responder }
}

extension HTTPServerBuilder {
    /// HTTP/1.1, over TLS when `contexts` is given.
    static func gateway(tls contexts: TLSContextHolder?) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            let http = HTTP1Channel(responder: responder, configuration: .init())
            guard let contexts else { return http }
            return ReloadableTLSChannel(base: http, contexts: contexts)
        }
    }
}

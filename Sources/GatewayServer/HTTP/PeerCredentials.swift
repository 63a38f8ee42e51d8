import CUnixSocket
import Glibc
import NIOCore

/// Who is at the other end of a unix-socket connection, as the kernel recorded it when
/// the peer connected (`SO_PEERCRED`): it cannot be forged by the peer.
public struct PeerCredentials: Sendable, Equatable {
    public var pid: pid_t
    public var uid: uid_t
    public var gid: gid_t

    /// nil when the channel is not a unix socket NIO can ask.
    public static func of(_ channel: any Channel) async -> PeerCredentials? {
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        do {
            let credentials: keyrotd_ucred = try await provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED)
            ).get()
            return PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
        } catch {
            return nil
        }
    }
}

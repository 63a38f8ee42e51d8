import Logging
import SystemPackage

/// Who may use the control socket: root, the daemon's own user, and members of the
/// socket file's group (the keyrotd group under systemd), by primary or supplementary
/// group.
///
/// The file's mode (0660) already keeps others from connecting; this check still holds
/// when someone loosens the mode or the socket is reached through a descriptor passed on.
struct ControlAccess: Sendable {
    let ownUID: UInt32
    let socketGroup: UInt32

    func allows(_ peer: ControlPeer) -> Bool {
        peer.uid == 0 || peer.uid == ownUID || peer.gid == socketGroup || peer.groups.contains(socketGroup)
    }
}

extension UnixSocket {
    /// The connected peer as the kernel recorded it at connect(2). Without
    /// SO_PEERGROUPS (Linux before 4.13) the supplementary groups are unknown and
    /// only the primary group counts.
    func peer() throws(Errno) -> ControlPeer {
        let credentials = try peerCredentials()
        return ControlPeer(
            pid: credentials.pid, uid: credentials.uid, gid: credentials.gid, groups: (try? peerGroups()) ?? [])
    }
}

extension ControlPeer {
    /// Who asked, for the log: never anything from the request itself.
    var logMetadata: Logger.Metadata {
        ["pid": "\(pid)", "uid": "\(uid)"]
    }
}

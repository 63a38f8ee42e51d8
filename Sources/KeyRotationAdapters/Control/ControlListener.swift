import Glibc
import SystemPackage

/// The control socket's listening end and the file that names it.
///
/// Binding replaces a stale socket file at the path: the caller holds the state lock,
/// so no other keyrotd can be listening there. Anything else at the path (a file, a
/// directory, a symbolic link) is left alone and refused. The file is made 0660 before
/// `listen`, so no client can connect while it still has the umask's mode.
struct ControlListener: Sendable {
    let socket: UnixSocket
    let path: String
    /// The socket file's group: its members may use the socket.
    let group: UInt32
    /// The socket file this listener made, so that `close` never unlinks a successor's.
    private let device: UInt64
    private let inode: UInt64

    static let permissions: FilePermissions = [.ownerReadWrite, .groupReadWrite]

    static func bind(at path: String) throws(ControlSocketError) -> ControlListener {
        try removeStaleSocket(at: path)
        let socket: UnixSocket
        do {
            socket = try UnixSocket.stream(blocking: false)
        } catch {
            throw .io(error, "create", path)
        }
        var action = "bind"
        do throws(Errno) {
            try socket.bind(to: path)
            action = "set the mode of"
            try Syscall.setPermissions(ofPath: path, permissions)
            action = "inspect"
            let status = try Syscall.entryStatus(path)
            action = "listen on"
            try socket.listen()
            return ControlListener(
                socket: socket, path: path, group: status.st_gid,
                device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
        } catch {
            socket.close()
            if action != "bind" { try? Syscall.removeFile(path) }
            throw .io(error, action, path)
        }
    }

    /// Stops listening and removes the socket file, if it is still the one `bind` made.
    func close() {
        socket.close()
        if let status = try? Syscall.entryStatus(path), UInt64(status.st_dev) == device, UInt64(status.st_ino) == inode {
            try? Syscall.removeFile(path)
        }
    }

    private static func removeStaleSocket(at path: String) throws(ControlSocketError) {
        let status: stat
        do {
            status = try Syscall.entryStatus(path)
        } catch {
            if error == .noSuchFileOrDirectory { return }
            throw .io(error, "inspect", path)
        }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw .notASocket(path, kind(status.st_mode))
        }
        do {
            try Syscall.removeFile(path)
        } catch {
            if error != .noSuchFileOrDirectory { throw .io(error, "remove the stale", path) }
        }
    }

    private static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: "a regular file"
        case S_IFDIR: "a directory"
        case S_IFLNK: "a symbolic link"
        case S_IFIFO: "a FIFO"
        case S_IFCHR, S_IFBLK: "a device"
        default: "something else"
        }
    }
}

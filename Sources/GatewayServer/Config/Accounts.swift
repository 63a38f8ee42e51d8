import Glibc

/// User and group look-ups through NSS (`/etc/passwd`, `/etc/group`, or whatever the
/// system configures), for unix-socket clients and admin users.
public enum Accounts {
    public static func userID(named name: String) -> uid_t? {
        withBuffer { base, buffer in
            var entry = passwd()
            var result: UnsafeMutablePointer<passwd>?
            let status = getpwnam_r(name, &entry, base, buffer.count, &result)
            return status == 0 && result != nil ? entry.pw_uid : nil
        }
    }

    public static func groupID(named name: String) -> gid_t? {
        withBuffer { base, buffer in
            var entry = group()
            var result: UnsafeMutablePointer<group>?
            let status = getgrnam_r(name, &entry, base, buffer.count, &result)
            return status == 0 && result != nil ? entry.gr_gid : nil
        }
    }

    /// The user's name and primary group, nil for an id without an account.
    public static func user(id: uid_t) -> (name: String, group: gid_t)? {
        withBuffer { base, buffer in
            var entry = passwd()
            var result: UnsafeMutablePointer<passwd>?
            let status = getpwuid_r(id, &entry, base, buffer.count, &result)
            guard status == 0, result != nil, let name = entry.pw_name else { return nil }
            return (String(cString: name), entry.pw_gid)
        }
    }

    /// Every group of user `id`: its primary group and the supplementary groups the
    /// group database lists it in.
    public static func groups(ofUser id: uid_t) -> Set<gid_t> {
        guard let user = user(id: id) else { return [] }
        var count: Int32 = 64
        while true {
            var groups = [gid_t](repeating: 0, count: Int(count))
            let found = getgrouplist(user.name, user.group, &groups, &count)
            if found >= 0 { return Set(groups.prefix(Int(count))) }
            if count <= groups.count { return [user.group] }
        }
    }

    private static func withBuffer<R>(_ body: (_ base: UnsafeMutablePointer<CChar>, _ buffer: UnsafeMutableBufferPointer<CChar>) -> R?) -> R? {
        var size = 1024
        while size <= 1 << 20 {
            let buffer = UnsafeMutableBufferPointer<CChar>.allocate(capacity: size)
            defer { buffer.deallocate() }
            guard let base = buffer.baseAddress else { return nil }
            if let value = body(base, buffer) { return value }
            // ERANGE can't be told apart from "no such entry" through this shape; a larger
            // buffer settles it (entries are small; 1 MiB is far beyond any real one).
            size *= 8
        }
        return nil
    }
}

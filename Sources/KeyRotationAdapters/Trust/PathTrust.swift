import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Who can change a file keyrotd runs or reads: the one place that decides.
///
/// A file is only as trustworthy as every directory above it: whoever may write
/// any directory on the way can rename a part of the path away and put their own
/// in its place. So `verify` resolves the path itself, one component at a time
/// from `/`, and demands of every entry it passes through — directories, the
/// symbolic links it follows and the final file — that
/// - its owner is root or the user keyrotd runs as (`geteuid()`), and
/// - it is not writable by group or others, except a directory with the sticky
///   bit (such as /tmp): there others may add entries but not rename or remove
///   one they do not own, and the next component, checked in turn, must be
///   owned by root or keyrotd's user.
///
/// Every component is opened relative to its already-checked parent with
/// openPathOnly | O_NOFOLLOW and judged by fstat of that descriptor, so what is judged
/// is what the name meant at that moment, never a symbolic link's target by
/// accident. A symbolic link is judged as an entry (its owner and its directory)
/// and then its target is walked in the same way; the result is the real path.
enum PathTrust {
    /// Why a path is not trusted; `message(for:path:)` makes the sentence.
    struct Refusal: Error, Sendable, Equatable {
        enum Reason: Sendable, Equatable {
            case missing
            case notDirectory
            case untrustedOwner(uid_t)
            case writable(owner: uid_t, mode: mode_t)
            case symbolicLink
            case tooManyLinks
            case failed(Errno)
        }

        /// The offending component, as reached (links resolved up to it).
        var component: String
        var reason: Reason

        /// A full sentence: `what` (e.g. "hook") and `path` name the file the
        /// check was for; the offending component is named when it is another one.
        func message(for what: String, path: String, stake: String) -> String {
            let subject = component == path ? "\(what) \(path)" : "\(what) \(path): \(component)"
            switch reason {
            case .missing:
                return "\(subject) does not exist"
            case .notDirectory:
                return "\(subject) is not a directory"
            case .untrustedOwner(let owner):
                return "\(subject) is owned by \(PathTrust.describe(owner)), neither root nor keyrotd's user: \(stake)"
            case .writable(let owner, let mode):
                return "\(subject) is writable by group or others (owner \(PathTrust.describe(owner)), mode \(PathTrust.octal(mode))): \(stake); chmod go-w \(component)"
            case .symbolicLink:
                return "\(subject) is a symbolic link; name the file itself"
            case .tooManyLinks:
                return "\(subject): too many levels of symbolic links"
            case .failed(let error):
                return "\(subject) cannot be examined: \(error)"
            }
        }
    }

    /// What `verify` found at the end of the walk.
    struct Verified: Sendable, Equatable {
        /// The path with every ".", ".." and symbolic link resolved: the file
        /// that was checked, so the one to open or run.
        var realPath: String
        var isRegularFile: Bool
        var owner: uid_t
        var mode: mode_t
    }

    /// Whether a symbolic link as the last component is followed (hooks, the
    /// configuration file) or refused (files read with O_NOFOLLOW).
    enum FinalLink: Sendable {
        case follow
        case refuse
    }

    /// Root and the user keyrotd runs as: anyone else owning a component could
    /// change what keyrotd runs or reads.
    static func isTrusted(_ owner: uid_t) -> Bool { owner == 0 || owner == geteuid() }

    /// O_PATH (Linux): a descriptor that names an entry without opening it for
    /// reading, so a FIFO or device is never opened. Glibc's module hides it
    /// (it needs _GNU_SOURCE); this is its value on x86-64 and arm64.
    private static let openPathOnly: CInt = 0o10000000

    /// Follows the kernel's limit (MAXSYMLINKS): a loop ends as ELOOP would.
    private static let maximumLinks = 40

    /// Walks `path` (absolute) as described on the type. Throws the first
    /// component that fails; a missing one is `.missing`.
    static func verify(_ path: String, finalLink: FinalLink = .follow) throws(Refusal) -> Verified {
        guard path.hasPrefix("/") else { throw Refusal(component: path, reason: .missing) }
        let root = open("/", openPathOnly | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw Refusal(component: "/", reason: .failed(Errno(rawValue: errno))) }
        var opened: [(name: String, descriptor: CInt)] = []
        defer {
            close(root)
            for entry in opened { close(entry.descriptor) }
        }
        let rootStatus = try status(of: root, at: "/")
        try judge(rootStatus, at: "/")

        var pending = Array(components(path).reversed())
        var links = 0
        var isOriginalName = true
        while let name = pending.popLast() {
            if name == "." { continue }
            if name == ".." {
                if let last = opened.popLast() { close(last.descriptor) }
                continue
            }
            let parent = opened.last?.descriptor ?? root
            let here = "/" + (opened.map(\.name) + [name]).joined(separator: "/")
            let isLast = pending.isEmpty
            let descriptor = openat(parent, name, openPathOnly | O_NOFOLLOW | O_CLOEXEC)
            guard descriptor >= 0 else {
                let error = Errno(rawValue: errno)
                throw Refusal(
                    component: isLast && isOriginalName ? path : here,
                    reason: error == .noSuchFileOrDirectory ? .missing : error == .notDirectory ? .notDirectory : .failed(error))
            }
            let info: stat
            do throws(Refusal) {
                info = try status(of: descriptor, at: here)
            } catch {
                close(descriptor)
                throw error
            }
            let type = info.st_mode & S_IFMT
            let reported = isLast && isOriginalName && type != S_IFLNK ? path : here
            if type == S_IFLNK {
                close(descriptor)
                guard isTrusted(info.st_uid) else { throw Refusal(component: here, reason: .untrustedOwner(info.st_uid)) }
                if isLast && finalLink == .refuse { throw Refusal(component: here, reason: .symbolicLink) }
                links += 1
                guard links <= maximumLinks else { throw Refusal(component: here, reason: .tooManyLinks) }
                let target = try readLink(parent, name, at: here)
                if target.hasPrefix("/") {
                    for entry in opened { close(entry.descriptor) }
                    opened = []
                }
                pending.append(contentsOf: components(target).reversed())
                isOriginalName = false
                continue
            }
            if type == S_IFDIR {
                opened.append((name, descriptor))
                try judge(info, at: reported)
                continue
            }
            close(descriptor)
            guard isLast else { throw Refusal(component: here, reason: .notDirectory) }
            try judge(info, at: reported)
            return Verified(
                realPath: here, isRegularFile: type == S_IFREG, owner: info.st_uid, mode: info.st_mode & 0o7777)
        }
        // The path named a directory (or "/").
        let realPath = "/" + opened.map(\.name).joined(separator: "/")
        let last = try status(of: opened.last?.descriptor ?? root, at: realPath)
        return Verified(realPath: realPath, isRegularFile: false, owner: last.st_uid, mode: last.st_mode & 0o7777)
    }

    /// The owner and write rules for one entry that is not a symbolic link.
    private static func judge(_ info: stat, at component: String) throws(Refusal) {
        guard isTrusted(info.st_uid) else { throw Refusal(component: component, reason: .untrustedOwner(info.st_uid)) }
        let isStickyDirectory = info.st_mode & S_IFMT == S_IFDIR && info.st_mode & S_ISVTX != 0
        if info.st_mode & 0o022 != 0 && !isStickyDirectory {
            throw Refusal(component: component, reason: .writable(owner: info.st_uid, mode: info.st_mode & 0o7777))
        }
    }

    private static func status(of descriptor: CInt, at component: String) throws(Refusal) -> stat {
        var info = stat()
        while fstat(descriptor, &info) != 0 {
            if errno != EINTR { throw Refusal(component: component, reason: .failed(Errno(rawValue: errno))) }
        }
        return info
    }

    private static func readLink(_ parent: CInt, _ name: String, at component: String) throws(Refusal) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlinkat(parent, name, &buffer, buffer.count - 1)
        guard count >= 0 else { throw Refusal(component: component, reason: .failed(Errno(rawValue: errno))) }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func components(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    /// "nobody (uid 65534)", or "uid 1234" when the user database has no name.
    static func describe(_ owner: uid_t) -> String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        if getpwuid_r(owner, &entry, &buffer, buffer.count, &result) == 0, let result, let name = result.pointee.pw_name {
            return "\(String(cString: name)) (uid \(owner))"
        }
        return "uid \(owner)"
    }

    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

/// Loopback hosts, the only ones plain http may reach (tests, the demo).
///
/// A host counts only in a spelling that every parser reads the same way:
/// `localhost`, `::1`, or a dotted quad in 127.0.0.0/8 exactly as `inet_pton`
/// reads it (four decimal parts 0–255, no leading zeros, no octal or hex, no
/// shorthand like `127.1`, no trailing dot). Anything looser is refused, because
/// libcurl reads what `inet_pton` refuses as a host name and resolves it:
/// `127.0.0.08` could name any machine in `/etc/hosts` or DNS.
///
/// IPv6: only the canonical `::1`. Other spellings of the same address
/// (`0:0:0:0:0:0:0:1`, `::0:1`, `::ffff:127.0.0.1`) are refused rather than parsed
/// here: nobody needs them, and a second IPv6 parser is a second chance to
/// disagree with libcurl's. (libcurl also refuses, at connect time, plain http to
/// any peer that is not loopback, so a disagreement could not leak a secret.)
///
/// This lives in the pure core, without Glibc, because the configuration parser
/// applies the same rule to `base_url`; an adapter test checks it against the real
/// `inet_pton` over many inputs.
public enum LoopbackAddress {
    public static func contains(_ host: String) -> Bool {
        var host = Substring(host.lowercased())
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        if host == "localhost" || host == "::1" { return true }
        guard let octets = ipv4Octets(host) else { return false }
        return octets[0] == 127
    }

    /// The four octets of a dotted quad as `inet_pton(AF_INET, …)` accepts it, else nil.
    public static func ipv4Octets(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.utf8.count),
                  part.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                  part.utf8.count == 1 || part.utf8.first != 0x30,
                  let value = UInt8(part)
            else { return nil }
            octets.append(value)
        }
        return octets
    }
}

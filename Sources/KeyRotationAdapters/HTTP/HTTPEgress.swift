import Foundation
import KeyRotation

/// How an `HTTPClient` leaves the network: an explicit proxy and the trusted CAs.
/// Built from a provider's `EgressSettings`; nothing comes from the environment.
public struct HTTPEgress: Sendable {
    /// `http://host:port` or `https://host:port`; nil: connect directly.
    public var proxy: String?
    public var proxyCredentials: ProxyCredentials?
    /// A PEM bundle; nil: the system store only.
    public var caFile: String?
    public var caMode: CAMode
    /// The directory of hashed CA certificates `add` keeps beside `caFile`; nil:
    /// libcurl's built-in one (Debian: /etc/ssl/certs). Tests point it elsewhere.
    var systemCAPath: String?

    public init(proxy: String? = nil, proxyCredentials: ProxyCredentials? = nil, caFile: String? = nil, caMode: CAMode = .add) {
        self.proxy = proxy
        self.proxyCredentials = proxyCredentials
        self.caFile = caFile
        self.caMode = caMode
    }

    /// A provider's egress with its proxy credentials read from their file.
    public init(_ settings: EgressSettings) throws(ProxyCredentialsError) {
        self.init(
            proxy: settings.proxy, proxyCredentials: try settings.proxyCredentialsFile.map(ProxyCredentials.read),
            caFile: settings.caFile, caMode: settings.caMode)
    }

    var proxyScheme: String? {
        proxy.flatMap { URLComponents(string: $0)?.scheme?.lowercased() }
    }
}

/// `user:password` for the proxy (Basic authentication). The password is a `Secret`.
public struct ProxyCredentials: Sendable {
    public var user: String
    public var password: Secret

    public init(user: String, password: Secret) {
        self.user = user
        self.password = password
    }

    /// Reads `user:password` (first line, surrounding whitespace dropped) from a
    /// file trusted like the admin key file (`AdminKey.fileProblem`: the whole path
    /// owned by root or keyrotd's user, 0600, no symbolic link).
    public static func read(path: String) throws(ProxyCredentialsError) -> ProxyCredentials {
        let text: String
        do {
            text = try AdminKey.readSecretFile(path, what: "proxy credentials", shown: path, checkingTrust: true)
        } catch {
            throw ProxyCredentialsError(description: error.description)
        }
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex, !text.contains("\n") else {
            throw ProxyCredentialsError(description: "proxy credentials file \(path) must hold one line user:password")
        }
        return ProxyCredentials(user: String(text[..<colon]), password: Secret(String(text[text.index(after: colon)...])))
    }
}

public struct ProxyCredentialsError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

import Foundation

/// The rules for a provider's `proxy` and for what may travel over plain http.
///
/// Plain http may carry a secret only to a loopback peer: a plain-http `base_url`
/// carries the admin key, and an `http://` proxy given credentials carries them in
/// its `Proxy-Authorization` header. So an `http://` proxy is fine for an https
/// provider (the request is tunnelled with CONNECT: the proxy sees the host name,
/// never the admin key), but proxy credentials need an `https://` proxy unless the
/// proxy is on loopback. A plain-http `base_url` never goes through a proxy.
public enum EgressRules {
    public static let proxySchemes = ["http", "https"]

    /// The proxy's parts, or a message saying why `text` is not a usable proxy URL.
    public static func proxy(_ text: String) -> Result<(scheme: String, host: String), ProxyURLProblem> {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty
        else {
            return .failure(ProxyURLProblem("\"\(text)\" is not an absolute URL (e.g. \"http://proxy.example.com:3128\")"))
        }
        guard proxySchemes.contains(scheme) else {
            return .failure(ProxyURLProblem("unsupported proxy scheme \"\(scheme)\"; use http:// or https://"))
        }
        if components.user != nil || components.password != nil {
            return .failure(ProxyURLProblem("must not carry credentials in the URL; put user:password in proxy_credentials_file"))
        }
        if !(components.path.isEmpty || components.path == "/") || components.query != nil || components.fragment != nil {
            return .failure(ProxyURLProblem("must be scheme://host:port, without a path, query or fragment"))
        }
        guard components.port != nil else {
            return .failure(ProxyURLProblem("give the proxy's port explicitly (e.g. \"\(scheme)://\(host):3128\")"))
        }
        return .success((scheme, host))
    }

    /// Why `proxy` may not carry credentials, or nil when it may.
    public static func credentialsProblem(proxyScheme: String, proxyHost: String) -> String? {
        if proxyScheme == "https" || LoopbackAddress.contains(proxyHost) { return nil }
        return "an http:// proxy would receive these credentials in clear text over the network; use an https:// proxy (or one on loopback)"
    }
}

public struct ProxyURLProblem: Error, Sendable {
    public var message: String
    init(_ message: String) { self.message = message }
}

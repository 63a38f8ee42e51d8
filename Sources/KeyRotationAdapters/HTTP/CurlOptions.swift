import CCurl

/// Sets options on an easy handle and keeps the first one libcurl refused. A
/// refused option is never ignored: a libcurl too old for `CURLOPT_PROTOCOLS_STR`
/// would otherwise allow every protocol, and one without `CURLOPT_SSLVERSION`
/// any TLS version. The transfer does not start after a refusal.
struct CurlOptions {
    let handle: UnsafeMutableRawPointer
    private(set) var failure: HTTPError?

    init(_ handle: UnsafeMutableRawPointer) {
        self.handle = handle
    }

    mutating func set(_ option: CURLoption, _ value: Int) {
        check(option, keyrotd_curl_setopt_long(handle, option, value))
    }

    /// nil clears a string option (e.g. the built-in CA directory).
    mutating func set(_ option: CURLoption, _ value: String?) {
        check(option, keyrotd_curl_setopt_str(handle, option, value))
    }

    mutating func set(_ option: CURLoption, _ value: UnsafeMutableRawPointer?) {
        check(option, keyrotd_curl_setopt_ptr(handle, option, value))
    }

    mutating func set(_ option: CURLoption, _ value: UnsafeMutablePointer<curl_slist>?) {
        check(option, keyrotd_curl_setopt_slist(handle, option, value))
    }

    mutating func check(_ option: CURLoption, _ code: CURLcode) {
        guard code != CURLE_OK, failure == nil else { return }
        let name = curl_easy_option_by_id(option).flatMap { $0.pointee.name.flatMap { String(validatingCString: $0) } }
        let reason = String(validatingCString: curl_easy_strerror(code)) ?? "error \(code.rawValue)"
        failure = HTTPError(
            code: .setup,
            message: "libcurl refused CURLOPT_\(name ?? String(option.rawValue)) (\(reason)); keyrotd needs libcurl 7.85 or later with TLS and proxy support")
    }
}

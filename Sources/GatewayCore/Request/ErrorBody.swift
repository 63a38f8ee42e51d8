/// Error responses in the shape Mistral's API answers with, so SDKs raise their usual
/// exceptions with our message:
/// `{"object":"error","message":"…","type":"…","param":null,"code":"…"}`.
public struct GatewayErrorResponse: Sendable, Equatable, Error {
    public var status: Int
    public var message: String
    /// "invalid_request_error", "authentication_error", "permission_error",
    /// "rate_limit_error", "budget_exceeded", "not_found", "upstream_error".
    public var type: String
    public var code: String
    /// Seconds, for 429.
    public var retryAfter: Int?

    public init(status: Int, message: String, type: String, code: String, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.retryAfter = retryAfter
    }

    /// The JSON body (UTF-8), message escaped per RFC 8259.
    public var body: [UInt8] {
        // STUB
        Array("{\"object\":\"error\",\"message\":\"\",\"type\":\"\(type)\",\"param\":null,\"code\":\"\(code)\"}".utf8)
    }
}

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

    /// The JSON body (UTF-8), every string escaped per RFC 8259 (the message may quote
    /// what a consumer sent: a model name, a path).
    public var body: [UInt8] {
        var json: [UInt8] = []
        func append(_ text: String) { json.append(contentsOf: text.utf8) }
        append("{\"object\":\"error\",\"message\":")
        Self.appendJSONString(message, to: &json)
        append(",\"type\":")
        Self.appendJSONString(type, to: &json)
        append(",\"param\":null,\"code\":")
        Self.appendJSONString(code, to: &json)
        append("}")
        return json
    }

    /// `text` as a JSON string: quotes, backslashes and control characters escaped,
    /// everything else as UTF-8.
    static func appendJSONString(_ text: String, to json: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        json.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): json.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): json.append(contentsOf: "\\\\".utf8)
            case UInt8(ascii: "\n"): json.append(contentsOf: "\\n".utf8)
            case UInt8(ascii: "\r"): json.append(contentsOf: "\\r".utf8)
            case UInt8(ascii: "\t"): json.append(contentsOf: "\\t".utf8)
            case 0..<0x20: json.append(contentsOf: "\\u00".utf8 + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: json.append(byte)
            }
        }
        json.append(UInt8(ascii: "\""))
    }
}

import Foundation
import GatewayCore
import Testing

@Suite struct ErrorResponseTests {
    static let messages: [String] = [
        "",
        "model \"mistral-large\" is not allowed for role analyst (allowed: mistral-small-*)",
        "back\\slash and /slash",
        "line\nbreak\r\ttab",
        String((0..<0x20).map { Character(Unicode.Scalar(UInt8($0))) }) + "\u{7F}",
        "unicode: é 日本 🙂 \u{2028}\u{2029} \u{FEFF}",
        "\"\\\"\\\\u0000\"",
    ]

    @Test(arguments: messages)
    func bodyIsJSONAndRoundTripsTheMessage(message: String) throws {
        let response = GatewayErrorResponse(
            status: 403, message: message, type: "permission_error", code: "model_not\"allowed")
        let body = response.body
        #expect(!body.contains { $0 < 0x20 }, "raw control characters are not allowed in JSON strings")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(parsed["object"] as? String == "error")
        #expect(parsed["message"] as? String == message)
        #expect(parsed["type"] as? String == "permission_error")
        #expect(parsed["code"] as? String == "model_not\"allowed")
        #expect(parsed["param"] is NSNull)
        #expect(parsed.count == 5)
    }

    @Test func bodyHasMistralsShape() {
        let body = GatewayErrorResponse(status: 401, message: "missing token", type: "authentication_error", code: "unauthorized").body
        #expect(String(decoding: body, as: UTF8.self)
            == #"{"object":"error","message":"missing token","type":"authentication_error","param":null,"code":"unauthorized"}"#)
    }
}

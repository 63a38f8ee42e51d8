import Foundation
import KeyRotation

/// Request lines in, reply lines out: the control protocol's bytes, with the error a
/// client gets for each way a request can be wrong.
enum ControlWire {
    static let newline = UInt8(ascii: "\n")

    /// The request in `line` (without its newline), or the error to answer with.
    ///
    /// The version is read on its own first: a request in another version is answered
    /// `unsupported_version` whatever its other fields are.
    static func request(from line: ArraySlice<UInt8>) -> Result<ControlRequest, ControlError> {
        let data = Data(line)
        let decoder = Timestamp.jsonDecoder()
        do {
            let version = try decoder.decode(VersionField.self, from: data).version
            guard version == ControlProtocol.version else {
                return .failure(.unsupportedVersion(version))
            }
            return .success(try decoder.decode(ControlRequest.self, from: data))
        } catch let error as DecodingError {
            return .failure(.badRequest(problem(error)))
        } catch {
            return .failure(.badRequest("the request could not be read"))
        }
    }

    /// `response` as one line of compact JSON ending in a newline.
    static func line<R: Codable & Sendable>(_ response: ControlResponse<R>) -> [UInt8] {
        guard let body = try? Timestamp.compactJSONEncoder().encode(response) else {
            return unencodableReply
        }
        return Array(body) + [newline]
    }

    static func line(_ error: ControlError) -> [UInt8] {
        line(ControlResponse<NoResult>(error: error))
    }

    /// What a client gets when the daemon's answer cannot be encoded (a bug: a result
    /// holding a non-finite number).
    private static let unencodableReply = Array(
        #"{"error":{"code":"internal","message":"keyrotd could not encode its reply"},"ok":false,"version":1}"#.utf8
    ) + [newline]

    private struct VersionField: Decodable {
        var version: Int
    }

    /// What is wrong with the request, for the person who wrote it. Quotes no values
    /// from the request, only field names.
    private static func problem(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            return "the request has no \"\(fieldPath(context.codingPath + [key]))\" field"
        case .valueNotFound(_, let context):
            return "\"\(fieldPath(context.codingPath))\" is null"
        case .typeMismatch(_, let context) where context.codingPath.isEmpty:
            return "the request is not a JSON object"
        case .typeMismatch(let type, let context):
            return "\"\(fieldPath(context.codingPath))\" has the wrong type (expected \(jsonName(type)))"
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return "the request is not valid JSON"
        case .dataCorrupted(let context) where context.codingPath.last?.stringValue == "command":
            let commands = ControlRequest.Command.allCases.map(\.rawValue).joined(separator: ", ")
            return "unknown command (this keyrotd knows \(commands))"
        case .dataCorrupted(let context):
            return "\"\(fieldPath(context.codingPath))\" has an invalid value"
        @unknown default:
            return "the request could not be read"
        }
    }

    /// A duration for a message, as keyrotd writes spans elsewhere ("5s", "300ms").
    static func span(_ duration: Duration) -> TimeSpan {
        TimeSpan(milliseconds: Int64((duration / .milliseconds(1)).rounded()))
    }

    private static func fieldPath(_ path: [any CodingKey]) -> String {
        path.map(\.stringValue).joined(separator: ".")
    }

    private static func jsonName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default: "an object"
        }
    }
}

extension ControlError {
    static func badRequest(_ problem: String) -> ControlError {
        ControlError(code: "bad_request", message: problem)
    }

    static func unsupportedVersion(_ version: Int) -> ControlError {
        ControlError(
            code: "unsupported_version",
            message: "this keyrotd speaks control protocol version \(ControlProtocol.version), not \(version)")
    }

    static func tooLarge(limit: Int) -> ControlError {
        ControlError(code: "too_large", message: "the request is larger than \(limit) bytes")
    }

    static func requestTimeout(_ timeout: Duration) -> ControlError {
        ControlError(code: "timeout", message: "the request was not complete within \(ControlWire.span(timeout))")
    }

    static func replyTimeout(_ timeout: Duration) -> ControlError {
        ControlError(code: "timeout", message: "keyrotd did not answer within \(ControlWire.span(timeout))")
    }

    static let forbidden = ControlError(
        code: "forbidden",
        message: "this user may not use keyrotd's control socket (root, keyrotd's own user and the socket's group may)")

    static func busy(_ limit: Int) -> ControlError {
        ControlError(code: "busy", message: "keyrotd already has \(limit) control requests open; try again shortly")
    }

    static let shuttingDown = ControlError(code: "shutting_down", message: "keyrotd is stopping")
}

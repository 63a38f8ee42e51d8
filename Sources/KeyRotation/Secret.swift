/// A provider secret. Prints, debug-prints and reflects as `<redacted>`; its text
/// leaves only through `withExposedText` (hook stdin, the verify call) and the
/// state file's encoder, which holds it between create and a successful deploy.
public struct Secret: Sendable, Equatable, Codable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    private let text: String

    public init(_ text: String) {
        self.text = text
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [:]) }

    public var isEmpty: Bool { text.isEmpty }

    /// Hands the secret's text to `body`; the only way to read it.
    public func withExposedText<R>(_ body: (String) throws -> R) rethrows -> R {
        try body(text)
    }

    public init(from decoder: any Decoder) throws {
        text = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}

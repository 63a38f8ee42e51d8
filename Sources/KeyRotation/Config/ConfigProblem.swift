/// One thing wrong with a configuration, and where it is.
public struct ConfigProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Location: Sendable, Equatable {
        /// Where the TOML parser stopped, or where a key was found in the text.
        case line(Int, column: Int?)
        /// A TOML path such as `keys.dev-team.overlap`, when no line is known.
        case path(String)
        /// The file as a whole.
        case file
    }

    public enum Severity: String, Sendable, Equatable {
        case error
        /// Not fatal; worth knowing (e.g. a credential that can only be checked inside the service).
        case warning
    }

    public var location: Location
    /// The TOML path the problem is about, when there is one (`keys.dev-team.overlap`).
    public var path: String?
    public var message: String
    public var severity: Severity

    public init(_ location: Location, path: String? = nil, _ message: String, severity: Severity = .error) {
        self.location = location
        self.path = path
        self.message = message
        self.severity = severity
    }

    /// `file:line:column: message` in the style of compilers, so editors can jump to it.
    /// Always one line: values echoed from the file may hold any character, and a
    /// control, format or line-separator character shows escaped (`\n`, `\u{202E}`).
    public func formatted(file: String) -> String {
        let prefix = severity == .warning ? "warning: " : ""
        let subject = path.map { "\(Self.escaped($0)): " } ?? ""
        let message = Self.escaped(message)
        switch location {
        case .line(let line, let column?):
            return "\(file):\(line):\(column): \(prefix)\(subject)\(message)"
        case .line(let line, nil):
            return "\(file):\(line): \(prefix)\(subject)\(message)"
        case .path, .file:
            return "\(file): \(prefix)\(subject)\(message)"
        }
    }

    public var description: String { formatted(file: "config") }

    private static func escaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator:
                switch scalar {
                case "\n": result += "\\n"
                case "\r": result += "\\r"
                case "\t": result += "\\t"
                default: result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
                }
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

/// The configuration could not be accepted; `problems` holds every error found, not just the first.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var problems: [ConfigProblem]

    public init(problems: [ConfigProblem]) {
        self.problems = problems
    }
    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}

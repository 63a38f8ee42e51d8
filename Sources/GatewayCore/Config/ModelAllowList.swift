/// `models = [...]` of a role: exact names, `prefix-*` patterns, or `*` for all.
public struct ModelAllowList: Sendable, Equatable {
    public enum Pattern: Sendable, Equatable, CustomStringConvertible {
        case exact(String)
        /// "mistral-*" stored as "mistral-".
        case prefix(String)
        case any

        public var description: String {
            switch self {
            case .exact(let name): name
            case .prefix(let prefix): prefix + "*"
            case .any: "*"
            }
        }
    }

    public var patterns: [Pattern]

    public init(_ patterns: [Pattern]) {
        self.patterns = patterns
    }

    public func allows(_ model: String) -> Bool {
        patterns.contains { pattern in
            switch pattern {
            case .exact(let name): model == name
            case .prefix(let prefix): model.hasPrefix(prefix)
            case .any: true
            }
        }
    }

    /// "mistral-small-latest, codestral-*": for messages that say what a role may use.
    public var description: String {
        patterns.map(\.description).joined(separator: ", ")
    }
}

/// The paths the gateway answers, and what each needs.
enum Route: Equatable {
    case inference(InferenceKind)
    case models
    case model(String)

    init?(method: String, path: String) {
        if method == "GET" {
            if path == "/v1/models" { self = .models; return }
            let prefix = "/v1/models/"
            if path.hasPrefix(prefix), path.count > prefix.count {
                let id = String(path.dropFirst(prefix.count))
                guard !id.contains("/") else { return nil }
                self = .model(id)
                return
            }
            return nil
        }
        guard method == "POST", let kind = InferenceKind(rawValue: path) else { return nil }
        self = .inference(kind)
    }

    /// Whether `path` is a route with another method (405 rather than 404).
    static func isKnownPath(_ path: String) -> Bool {
        InferenceKind(rawValue: path) != nil || path == "/v1/models" || path.hasPrefix("/v1/models/")
    }
}

/// The forwarded POST paths (Mistral's inference API).
enum InferenceKind: String, CaseIterable {
    case chat = "/v1/chat/completions"
    case fim = "/v1/fim/completions"
    case embeddings = "/v1/embeddings"
    case moderations = "/v1/moderations"
    case chatModerations = "/v1/chat/moderations"
    case classifications = "/v1/classifications"
    case chatClassifications = "/v1/chat/classifications"

    /// Generates completion tokens: `max_tokens` applies, and bounds the output cost.
    var generates: Bool { self == .chat || self == .fim }
}

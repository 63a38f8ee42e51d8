/// The name keyrotd gives a provider key it creates:
/// `keyrotd/<instance>/<key>/g<generation>/<rotation id>`.
///
/// The instance names the keyrotd deployment, so two deployments sharing an
/// organisation and a key name (prod and staging both managing `app`) never take
/// each other's keys for their own. Names of the scheme before instances,
/// `keyrotd/<key>/g<generation>/<rotation id>`, parse with `instance` nil: such a
/// key is this deployment's only while a state record knows its id.
///
/// Names are read by their segments, never by prefix: five segments are the
/// current scheme, four the old one, so an instance named like a key (or a key
/// named like an instance) cannot be taken for the other.
public struct ProviderKeyName: Sendable, Equatable, CustomStringConvertible {
    /// The deployment that created the key; nil for a name of the old scheme.
    public var instance: String?
    public var key: String
    public var generation: Int
    public var rotationID: String

    public init(instance: String?, key: String, generation: Int, rotationID: String) {
        self.instance = instance
        self.key = key
        self.generation = generation
        self.rotationID = rotationID
    }

    /// nil for anything keyrotd did not name (a hand-made key, a name with a
    /// segment that could not come from keyrotd).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.first == "keyrotd" else { return nil }
        let fields: ArraySlice<String>
        switch parts.count {
        case 5:
            guard Self.isValidInstance(parts[1]) else { return nil }
            instance = parts[1]
            fields = parts[2...]
        case 4:
            instance = nil
            fields = parts[1...]
        default:
            return nil
        }
        let key = fields[fields.startIndex]
        let generationText = fields[fields.startIndex + 1]
        let rotationID = fields[fields.startIndex + 2]
        let digits = generationText.dropFirst()
        guard ManagedKey.isValidName(key), generationText.first == "g", !digits.isEmpty, digits.count <= 9,
              digits.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }), let generation = Int(digits),
              ManagedKey.isValidName(rotationID)
        else { return nil }
        self.key = key
        self.generation = generation
        self.rotationID = rotationID
    }

    public var description: String {
        let tail = "\(key)/g\(generation)/\(rotationID)"
        return instance.map { "keyrotd/\($0)/\(tail)" } ?? "keyrotd/\(tail)"
    }

    /// The substring every name this deployment gives `key`'s provider keys
    /// contains, for the provider's name filter (a pre-filter only: what it
    /// returns is parsed again).
    public static func filter(instance: String, key: String) -> String { "keyrotd/\(instance)/\(key)/" }

    /// Longest instance name: the provider key name must stay short.
    public static let maxInstanceLength = 32

    /// 1–32 letters, digits, ".", "_" or "-", starting with a letter or digit (the
    /// rule of key names, shorter).
    public static func isValidInstance(_ name: String) -> Bool {
        name.unicodeScalars.count <= maxInstanceLength && ManagedKey.isValidName(name)
    }

    /// A fresh instance name for a deployment whose state has none: 8 lowercase
    /// hex digits from the system's random source (getrandom), so two
    /// deployments started from the same configuration still differ.
    public static func randomInstance() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = UInt32.random(in: 0...UInt32.max, using: &generator)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}

/// Which instance name a deployment runs under, and where it came from.
public struct InstanceChoice: Sendable, Equatable {
    public enum Origin: Sendable, Equatable {
        /// The state file's, no `[daemon] instance` set.
        case persisted
        /// `[daemon] instance`, the same as the state file's or the state file had none.
        case configured
        /// `[daemon] instance`, replacing a different one the state file held.
        case configuredReplacing(String)
        /// Neither: drawn now, to be written to the state file.
        case drawn
    }

    public var instance: String
    public var origin: Origin

    /// The configuration wins (a restored backup, a copied state file, an operator
    /// naming a deployment keep the name they are given); else the state file's;
    /// else a fresh draw. Keys the state's records know stay this deployment's
    /// whatever their name says, so a change of name loses no key: only
    /// unrecorded keys named for the former instance are from then on another
    /// keyrotd's to this one (reported by the audit, never deleted).
    public static func resolve(configured: String?, persisted: String?, draw: () -> String) -> InstanceChoice {
        if let configured {
            if let persisted, persisted != configured {
                return InstanceChoice(instance: configured, origin: .configuredReplacing(persisted))
            }
            return InstanceChoice(instance: configured, origin: .configured)
        }
        if let persisted { return InstanceChoice(instance: persisted, origin: .persisted) }
        return InstanceChoice(instance: draw(), origin: .drawn)
    }
}

/// Whose key a keyrotd-made provider key name says it is, for a key no state record
/// owns: the one rule the audit's findings and `delete-orphan` both follow.
public enum ProviderKeyClaim: Sendable, Equatable {
    /// Named for this instance and a key it has or had, in that key's workspace: its
    /// secret is lost; this keyrotd may delete it.
    case orphan(ProviderKeyName)
    /// Named for another instance: another keyrotd's, never this one's to delete.
    case foreign(ProviderKeyName)
    /// The scheme before instances, for a key this keyrotd has or had, in its
    /// workspace: this keyrotd's from before the upgrade, or a not yet upgraded one's.
    case legacy(ProviderKeyName)
    /// Named for a key of this keyrotd, but listed in another workspace than the key's.
    case otherWorkspace(ProviderKeyName, expected: String)
    /// Named for a key this keyrotd never had.
    case unknownKey(ProviderKeyName)

    /// nil for a name keyrotd does not give. `isOwnKey`: a managed key this keyrotd
    /// has or had (configured, or in a state record); `workspaceOf`: a configured
    /// key's workspace.
    public static func judge(
        _ key: ListedKey, instance: String, isOwnKey: (String) -> Bool, workspaceOf: (String) -> String?
    ) -> ProviderKeyClaim? {
        guard let name = ProviderKeyName(key.name) else { return nil }
        if let other = name.instance, other != instance { return .foreign(name) }
        guard isOwnKey(name.key) else { return .unknownKey(name) }
        if let workspace = workspaceOf(name.key), key.workspaceID != workspace {
            return .otherWorkspace(name, expected: workspace)
        }
        return name.instance == nil ? .legacy(name) : .orphan(name)
    }
}

import Foundation

/// Provider failures are the machine's step failures: the adapter decides once
/// whether an error is transient, rate limiting, or needs an operator.
extension StepFailure: Error {}

/// A key provider's admin API, as the rotation needs it. One real adapter per
/// provider (Mistral first); tests use an in-memory one.
public protocol KeyProvider: Sendable {
    /// Creates a key named `name` in `workspace` for `user`, expiring on `expiration`'s
    /// date (rounded up to a whole day). The secret is in the result only.
    func createKey(name: String, expiration: Date, workspace: String, user: String) async throws(StepFailure) -> CreatedKey
    /// Every key (all pages), or those whose name contains `nameContains`.
    func listKeys(nameContains: String?) async throws(StepFailure) -> [ListedKey]
    /// Deletes a key; a key that is already gone counts as deleted.
    func deleteKey(id: String) async throws(StepFailure)
    /// Succeeds when the provider accepts `secret` for an ordinary API call.
    func verifyKey(secret: Secret) async throws(StepFailure)
}

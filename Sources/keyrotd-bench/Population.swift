import Foundation
import KeyRotation
import KeyRotationAdapters

/// One provider key for the local server's `POST /_control/keys`.
private struct SeededKey: Encodable {
    var key_id: String
    var name: String
    var created_at: String
}

/// Writes, through the state file adapter, the state of `keys` idle managed keys
/// (`team-0` …) of provider `mistral`, each with a first key created a day ago, so
/// none is due for months under any realistic `rotate_every` (the daemon recomputes
/// the due time from its configuration). The same provider keys go to `seedFile`
/// as JSON lines for the local server, so an audit finds each current key.
func populate(directory: String, keys: Int, seedFile: String) throws {
    let created = Date() - .days(1)
    var records: [String: KeyRecord] = [:]
    var seeds = ""
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    for index in 0..<keys {
        let name = "team-\(index)"
        let id = UUID().uuidString.lowercased()
        let providerName = ProviderKeyName(instance: "bench", key: name, generation: 1, rotationID: String(format: "%06x", index)).description
        var record = KeyRecord(name: name, seed: UInt64(index) &+ 1)
        record.provider = "mistral"
        record.current = ProviderKeyRef(id: id, name: providerName, createdAt: created, generation: 1)
        record.generation = 1
        record.jitterDraw = 0.5
        record.nextDue = created + .days(90)
        records[name] = record
        let line = try encoder.encode(SeededKey(key_id: id, name: providerName, created_at: Timestamp.format(created)))
        seeds += String(decoding: line, as: UTF8.self) + "\n"
    }
    let file = StateFile(path: directory + "/state.json")
    try file.prepareDirectory()
    let lock = try file.lock()
    _ = try file.removeLeftoverTemporaries(holding: lock)
    try file.save(body: try StateDocument(keys: records).encoded(), version: StateDocument.schemaVersion)
    try Data(seeds.utf8).write(to: URL(fileURLWithPath: seedFile))
    print("populate: \(keys) idle keys in \(file.path), their provider keys in \(seedFile)")
}

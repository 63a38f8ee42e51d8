import Foundation

/// Writes a `StateDocument` as the state file's body: compact JSON with sorted keys,
/// byte for byte what `Timestamp.compactJSONEncoder()` writes for the whole document,
/// but encoding again only the records (and the audit and budget memories) that changed
/// since the previous call. One persisted transition then costs one record's encoding
/// and a copy of the others' bytes, not an encoding of the whole fleet (36 ms at 1,000
/// keys, most of a persist).
///
/// The document's top-level members are written in the encoder's order (byte order of
/// their names: "audit", "budget", "instance", "keys"), and so are the keys' names.
public struct StateBodyWriter {
    private struct Encoded {
        var record: KeyRecord
        /// `"name":` with the name escaped as the encoder escapes it.
        var member: [UInt8]
        var json: [UInt8]
    }

    private var records: [String: Encoded] = [:]
    private var order: [String] = []
    private var audit: (memory: AuditMemory, json: [UInt8])?
    private var budget: (memory: BudgetMemory, json: [UInt8])?
    private let encoder = Timestamp.compactJSONEncoder()

    public init() {}

    /// How many records the last `body(of:)` had to encode (the others were reused).
    public private(set) var lastEncodedRecords = 0

    public mutating func body(of document: StateDocument) throws -> [UInt8] {
        lastEncodedRecords = 0
        if records.count != document.keys.count || document.keys.keys.contains(where: { records[$0] == nil }) {
            records = records.filter { document.keys[$0.key] != nil }
            order = document.keys.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        }
        var size = 2
        for name in order {
            let record = document.keys[name]!
            // `==` compares strings by canonical equivalence: a message that changed only
            // in Unicode normalisation keeps its earlier bytes, which decode to an equal
            // record (the checksum covers the bytes actually written).
            if let cached = records[name], cached.record == record {
                size += cached.member.count + cached.json.count + 1
                continue
            }
            let member = try encoder.encode(name) + [UInt8(ascii: ":")]
            let json = Array(try encoder.encode(record))
            records[name] = Encoded(record: record, member: Array(member), json: json)
            lastEncodedRecords += 1
            size += member.count + json.count + 1
        }

        var body: [UInt8] = []
        body.reserveCapacity(size + 64 + (audit?.json.count ?? 0) + (budget?.json.count ?? 0))
        body.append(UInt8(ascii: "{"))
        if let memory = document.audit {
            if audit?.memory != memory { audit = (memory, Array(try encoder.encode(memory))) }
            body.append(contentsOf: Self.auditMember)
            body.append(contentsOf: audit!.json)
            body.append(UInt8(ascii: ","))
        }
        if let memory = document.budget {
            if budget?.memory != memory { budget = (memory, Array(try encoder.encode(memory))) }
            body.append(contentsOf: Self.budgetMember)
            body.append(contentsOf: budget!.json)
            body.append(UInt8(ascii: ","))
        }
        if let instance = document.instance {
            body.append(contentsOf: Self.instanceMember)
            body.append(contentsOf: try encoder.encode(instance))
            body.append(UInt8(ascii: ","))
        }
        body.append(contentsOf: Self.keysMember)
        body.append(UInt8(ascii: "{"))
        for (index, name) in order.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            let encoded = records[name]!
            body.append(contentsOf: encoded.member)
            body.append(contentsOf: encoded.json)
        }
        body.append(contentsOf: [UInt8(ascii: "}"), UInt8(ascii: "}")])
        return body
    }

    private static let auditMember = Array("\"audit\":".utf8)
    private static let budgetMember = Array("\"budget\":".utf8)
    private static let instanceMember = Array("\"instance\":".utf8)
    private static let keysMember = Array("\"keys\":".utf8)
}

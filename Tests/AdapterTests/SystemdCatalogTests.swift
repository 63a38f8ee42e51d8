import Foundation
import Testing
import TestSupport
@testable import KeyRotation
@testable import KeyRotationAdapters

/// `systemd/keyrotd.catalog` and `MessageID` describe the same events, one entry each.
/// Parsed here; never installed (`journalctl --update-catalog` writes system files).
@Suite struct SystemdCatalogTests {
    struct Entry {
        var id: String
        var headers: [String: String]
        var body: [String]
    }

    /// The journal catalog format: `#` comments before the first entry, each entry a
    /// `-- <id> [language]` line, `Name: value` headers, an empty line, then the body.
    static func parse(_ text: String) throws -> [Entry] {
        var entries: [Entry] = []
        var inHeaders = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("-- ") {
                let parts = line.dropFirst(3).split(separator: " ")
                try #require(parts.count == 1, "entry line with a language or junk: \(line)")
                entries.append(Entry(id: String(parts[0]), headers: [:], body: []))
                inHeaders = true
            } else if entries.isEmpty {
                try #require(line.isEmpty || line.hasPrefix("#"), "text before the first entry: \(line)")
            } else if inHeaders {
                if line.isEmpty {
                    inHeaders = false
                    continue
                }
                let pair = line.split(separator: ":", maxSplits: 1)
                try #require(pair.count == 2, "header without a colon: \(line)")
                let name = String(pair[0])
                try #require(entries[entries.count - 1].headers[name] == nil, "header \(name) twice")
                entries[entries.count - 1].headers[name] = pair[1].trimmingCharacters(in: .whitespaces)
            } else {
                entries[entries.count - 1].body.append(line)
            }
        }
        return entries
    }

    static func catalog() throws -> [Entry] {
        let path = repositoryRoot.appendingPathComponent("systemd/keyrotd.catalog").path
        return try parse(String(contentsOfFile: path, encoding: .utf8))
    }

    @Test func everyMessageIDHasExactlyOneEntryAndViceVersa() throws {
        let entries = try Self.catalog()
        let catalogIDs = entries.map(\.id)
        let codeIDs = MessageID.all.map(\.id)
        #expect(Set(catalogIDs).count == catalogIDs.count, "an id appears twice in the catalog")
        #expect(Set(codeIDs).count == codeIDs.count, "two events share an id")
        #expect(Set(MessageID.all.map(\.event)).count == MessageID.all.count, "an event is listed twice")
        #expect(Set(catalogIDs) == Set(codeIDs))
        #expect(catalogIDs == codeIDs, "catalog order follows MessageID.all")
    }

    @Test func idsAre128BitLowercaseHex() throws {
        let hex = Set("0123456789abcdef")
        for id in try Self.catalog().map(\.id) + MessageID.all.map(\.id) {
            #expect(id.count == 32 && id.allSatisfy(hex.contains), "\(id)")
        }
    }

    @Test func everyAuditKindAndDaemonEventHasAnID() {
        let expected = AuditEvent.Kind.allCases.map(\.rawValue)
            + ["hook-output", "config-reloaded", "config-rejected", "daemon-started", "daemon-stopping", "audit-finding",
               "budget-threshold", "control-request", "instance-drawn", "instance-changed"]
        #expect(Set(MessageID.all.map(\.event)) == Set(expected))
        #expect(MessageID.all.count == expected.count)
        #expect(MessageID.forEvent("deploy") == nil)
        #expect(MessageID.forEvent("") == nil)
    }

    @Test func everyEntryHasSubjectDefinedBySupportAndABody() throws {
        for entry in try Self.catalog() {
            #expect(entry.headers["Subject"]?.isEmpty == false, "\(entry.id)")
            #expect(entry.headers["Defined-By"] == "keyrotd", "\(entry.id)")
            #expect(entry.headers["Support"] == "man:keyrotd(8)", "\(entry.id)")
            let body = entry.body.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(body.count > 80, "\(entry.id) needs a body")
        }
    }

    @Test func substitutionsNameOnlyFieldsTheHandlerWrites() throws {
        let known: Set<String> = [
            "KEYROTD_KEY", "KEYROTD_EVENT", "KEYROTD_KEY_ID", "KEYROTD_OLD_KEY_ID", "KEYROTD_GENERATION",
            "KEYROTD_ERROR", "KEYROTD_HOOK", "KEYROTD_STREAM", "KEYROTD_HOOK_EVENT", "KEYROTD_FINDING",
            "KEYROTD_THRESHOLD", "KEYROTD_PERCENT", "KEYROTD_SCOPE", "KEYROTD_COMMAND", "KEYROTD_PEER_UID",
        ]
        for entry in try Self.catalog() {
            let text = ([entry.headers["Subject"] ?? ""] + entry.body).joined(separator: "\n")
            let pieces = text.split(separator: "@", omittingEmptySubsequences: false)
            // Odd pieces sit between a pair of @: each must be a known field name.
            #expect(pieces.count % 2 == 1, "\(entry.id): unpaired @")
            for (index, piece) in pieces.enumerated() where index % 2 == 1 {
                #expect(known.contains(String(piece)), "\(entry.id): @\(piece)@")
            }
        }
    }

    @Test func operatorActionIsSpelledOutWhereOneIsNeeded() throws {
        let entries = try Self.catalog()
        for event in [
            "step-failed", "blocked", "config-rejected", "orphan-found", "audit-finding", "retirement-extended",
            "retirement-forced", "budget-threshold",
        ] {
            let id = try #require(MessageID.forEvent(event))
            let entry = try #require(entries.first { $0.id == id })
            let body = entry.body.joined(separator: "\n")
            #expect(body.contains("keyrotd ") && (body.contains("Fix") || body.contains("Act") || body.contains("delete") || body.contains("Decide")), "\(event)")
        }
    }
}

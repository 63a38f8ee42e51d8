import Foundation
import Glibc
import Logging
import Testing
@testable import KeyRotation
@testable import KeyRotationAdapters

/// The journal handler's fields, built as a pure function (tests never write to a real
/// journal), and the iovecs handed to sd_journal_sendv.
@Suite struct SystemdJournalFieldTests {
    private func fields(
        _ level: Logger.Level = .info, _ message: String = "m", _ metadata: Logger.Metadata = [:],
        identifier: String = "keyrotd"
    ) -> [String] {
        JournalFields.fields(level: level, message: message, metadata: metadata, identifier: identifier)
    }

    /// The values of field `name`, in order.
    private func values(_ fields: [String], _ name: String) -> [String] {
        fields.compactMap { field in
            field.hasPrefix(name + "=") ? String(field.dropFirst(name.count + 1)) : nil
        }
    }

    @Test func auditEventBecomesOneEntryWithEveryField() {
        let metadata: Logger.Metadata = [
            "key": "dev-team", "event": "deployed", "key_id": "k-new", "old_key_id": "k-old",
            "generation": "7",
        ]
        let result = JournalFields.fields(
            level: .notice, message: "dev-team: deployed to 2 hooks", metadata: metadata, identifier: "keyrotd",
            location: .init(file: "KeyRotationDaemon/Daemon.swift", function: "audit(_:)", line: 361))
        #expect(result == [
            "MESSAGE=dev-team: deployed to 2 hooks",
            "PRIORITY=5",
            "SYSLOG_IDENTIFIER=keyrotd",
            "MESSAGE_ID=250a172583544bdca730100b9e923989",
            "KEYROTD_EVENT=deployed",
            "KEYROTD_GENERATION=7",
            "KEYROTD_KEY=dev-team",
            "KEYROTD_KEY_ID=k-new",
            "KEYROTD_OLD_KEY_ID=k-old",
            "CODE_FILE=KeyRotationDaemon/Daemon.swift",
            "CODE_LINE=361",
            "CODE_FUNC=audit(_:)",
        ])
    }

    @Test func stepFailedCarriesTheErrorCode() {
        let result = fields(.warning, "dev-team: create failed", ["key": "dev-team", "event": "step-failed", "error": "http_503"])
        #expect(values(result, "KEYROTD_ERROR") == ["http_503"])
        #expect(values(result, "KEYROTD_EVENT") == ["step-failed"])
        #expect(values(result, "MESSAGE_ID") == [MessageID.forEvent("step-failed")].compactMap { $0 })
        #expect(values(result, "PRIORITY") == ["4"])
    }

    @Test(arguments: [
        (Logger.Level.trace, "7"), (.debug, "7"), (.info, "6"), (.notice, "5"), (.warning, "4"), (.error, "3"),
        (.critical, "2"),
    ])
    func priorityFollowsSyslog(level: Logger.Level, priority: String) {
        #expect(values(fields(level), "PRIORITY") == [priority])
    }

    @Test func hookOutputLineIsTaggedAsHookOutput() {
        let metadata: Logger.Metadata = [
            "hook": "/etc/keyrotd/hooks.d/env-file", "key": "dev-team", "event": "deploy", "stream": "stderr",
        ]
        let result = fields(.warning, "wrote /run/app/env", metadata)
        #expect(result == [
            "MESSAGE=wrote /run/app/env",
            "PRIORITY=4",
            "SYSLOG_IDENTIFIER=keyrotd",
            "MESSAGE_ID=0d2ba48f1a7a4ce48bad81f946f768dc",
            "KEYROTD_EVENT=hook-output",
            "KEYROTD_HOOK_EVENT=deploy",
            "KEYROTD_HOOK=/etc/keyrotd/hooks.d/env-file",
            "KEYROTD_KEY=dev-team",
            "KEYROTD_STREAM=stderr",
        ])
    }

    @Test func hookMessageWithoutStreamIsNotHookOutput() {
        // e.g. "hook timed out; SIGTERM sent to its process group"
        let result = fields(.warning, "hook timed out", ["hook": "/h", "key": "k", "event": "retire"])
        #expect(values(result, "KEYROTD_EVENT").isEmpty)
        #expect(values(result, "KEYROTD_HOOK_EVENT") == ["retire"])
        #expect(values(result, "MESSAGE_ID").isEmpty)
    }

    @Test func alertHookOutputKeepsItsAlertEvent() {
        let result = fields(.info, "paged", ["hook": "/h", "event": "failed", "stream": "stdout"])
        #expect(values(result, "KEYROTD_EVENT") == ["hook-output"])
        #expect(values(result, "KEYROTD_HOOK_EVENT") == ["failed"])
        #expect(values(result, "KEYROTD_KEY").isEmpty)
    }

    @Test func everyAuditKindAndDaemonEventGetsItsMessageID() throws {
        let names = AuditEvent.Kind.allCases.map(\.rawValue)
            + ["config-reloaded", "config-rejected", "daemon-started", "daemon-stopping", "audit-finding"]
        for name in names {
            let id = try #require(MessageID.forEvent(name), "\(name)")
            #expect(values(fields(.info, "x", ["event": .string(name)]), "MESSAGE_ID") == [id], "\(name)")
        }
    }

    @Test func unknownEventHasNoMessageIDButKeepsItsField() {
        let result = fields(.info, "x", ["event": "something-new"])
        #expect(values(result, "MESSAGE_ID").isEmpty)
        #expect(values(result, "KEYROTD_EVENT") == ["something-new"])
    }

    @Test func plainMessageHasOnlyTheBasicFields() {
        #expect(fields(.notice, "keyrotd stopped") == [
            "MESSAGE=keyrotd stopped", "PRIORITY=5", "SYSLOG_IDENTIFIER=keyrotd",
        ])
        #expect(values(fields(identifier: "keyrotd-test"), "SYSLOG_IDENTIFIER") == ["keyrotd-test"])
    }

    @Test(arguments: [
        ("file", "KEYROTD_FILE"),
        ("variable", "KEYROTD_VARIABLE"),
        ("retry-after", "KEYROTD_RETRY_AFTER"),
        ("Mixed.Case key", "KEYROTD_MIXED_CASE_KEY"),
        ("größe", "KEYROTD_GR__E"),
        ("_private", "KEYROTD__PRIVATE"),
        ("2fa", "KEYROTD_2FA"),
        ("", "KEYROTD_"),
        ("a=b\nc", "KEYROTD_A_B_C"),
    ])
    func otherMetadataKeysAreSanitized(key: String, name: String) {
        #expect(JournalFields.fieldName(forMetadataKey: key) == name)
        #expect(values(fields(.info, "x", [key: "v"]), name) == ["v"])
    }

    @Test func longMetadataKeysAreCutTo64Characters() {
        let name = JournalFields.fieldName(forMetadataKey: String(repeating: "x", count: 100))
        #expect(name == "KEYROTD_" + String(repeating: "X", count: 56))
        #expect(name.utf8.count == 64)
        let emoji = JournalFields.fieldName(forMetadataKey: String(repeating: "🔑", count: 100))
        #expect(emoji.utf8.count == 64)
    }

    @Test func everyFieldNameIsValidForJournald() {
        let metadata: Logger.Metadata = [
            "hook": "/h", "stream": "stdout", "event": "deploy", "key": "k", "weird key!": "1",
            String(repeating: "long", count: 30): "2", "0lead": "3", "ünï": "4", "": "5",
        ]
        let result = JournalFields.fields(
            level: .error, message: "m", metadata: metadata, identifier: "keyrotd",
            location: .init(file: "F", function: "f()", line: 1))
        for field in result {
            let name = field.prefix { $0 != "=" }
            #expect(JournalFields.isValidFieldName(name), "\(field)")
        }
        #expect(result.count == 3 + 2 + metadata.count + 3)  // + MESSAGE_ID and KEYROTD_EVENT=hook-output
    }

    @Test func fieldNameValidityFollowsJournaldRules() {
        for valid in ["MESSAGE", "KEYROTD_KEY", "A", "A_1", String(repeating: "A", count: 64)] {
            #expect(JournalFields.isValidFieldName(valid), "\(valid)")
        }
        for invalid in ["", "_PID", "1ABC", "key", "KEY-ID", "KEY ID", "KÉY", String(repeating: "A", count: 65)] {
            #expect(!JournalFields.isValidFieldName(invalid), "\(invalid)")
        }
    }

    @Test func valuesKeepNewlinesAndEqualsSigns() {
        let result = fields(.info, "line one\nline two", ["error": "a=b\nc", "key": "k"])
        #expect(values(result, "MESSAGE") == ["line one\nline two"])
        #expect(values(result, "KEYROTD_ERROR") == ["a=b\nc"])
    }

    @Test func nonStringMetadataIsWrittenAsItsDescription() {
        let hooks: Logger.MetadataValue = .array(["a", "b"])
        let result = fields(.info, "x", ["generation": .stringConvertible(7), "hooks": hooks])
        #expect(values(result, "KEYROTD_GENERATION") == ["7"])
        #expect(values(result, "KEYROTD_HOOKS") == [hooks.description])  // as StderrLogHandler writes it
    }

    @Test func iovecsPointAtEachFieldInOrder() {
        let input = ["MESSAGE=héllo\nworld", "PRIORITY=6", "KEYROTD_KEY=", "X=" + String(repeating: "v", count: 10_000)]
        let read = JournalLogHandler.withIOVecs(input) { iovecs in
            iovecs.map { iovec in
                String(decoding: UnsafeRawBufferPointer(start: iovec.iov_base, count: iovec.iov_len), as: UTF8.self)
            }
        }
        #expect(read == input)
        #expect(JournalLogHandler.withIOVecs([]) { $0.count } == 0)
    }

    @Test func handlerIsAValueTypeWithItsOwnLevelAndMetadata() {
        var handler = JournalLogHandler(label: "keyrotd")
        #expect(handler.identifier == "keyrotd")
        #expect(handler.logLevel == .info)
        var copy = handler
        copy.logLevel = .debug
        copy[metadataKey: "key"] = "dev-team"
        #expect(handler.logLevel == .info)
        #expect(handler[metadataKey: "key"] == nil)
        handler[metadataKey: "key"] = "other"
        #expect(copy[metadataKey: "key"] == "dev-team")
    }

    /// The real sd_journal_sendv path, run only where no journal socket exists (then
    /// libsystemd reports success after checking every iovec has a `=`), so a test never
    /// writes to a real journal. Where journald runs, this is skipped: sd_journal_sendv
    /// has a fixed socket path on systemd 252 and cannot be pointed at a fake one.
    @Test(.enabled(if: access("/run/systemd/journal/socket", F_OK) != 0, "a real journal socket exists"))
    func realSendWithoutAJournalSucceedsQuietly() {
        let result = JournalFields.fields(
            level: .info, message: "multi\nline", metadata: ["key": "k", "event": "deployed"], identifier: "keyrotd-test")
        #expect(JournalLogHandler.send(result) == 0)
        #expect(JournalLogHandler.send(["NO_EQUALS_SIGN"]) < 0)
    }
}

/// Journal or stderr: decided from JOURNAL_STREAM against stderr's device and inode.
@Suite struct SystemdLogDestinationTests {
    @Test func journalOnlyWhenJournalStreamMatchesStderr() {
        #expect(LogDestination.journalIsConnected(journalStream: "8:12345", stderrDevice: 8, stderrInode: 12345))
        #expect(!LogDestination.journalIsConnected(journalStream: nil, stderrDevice: 8, stderrInode: 12345))
        #expect(!LogDestination.journalIsConnected(journalStream: "8:12346", stderrDevice: 8, stderrInode: 12345))
        #expect(!LogDestination.journalIsConnected(journalStream: "9:12345", stderrDevice: 8, stderrInode: 12345))
        let max = UInt64.max
        #expect(LogDestination.journalIsConnected(journalStream: "\(max):\(max)", stderrDevice: max, stderrInode: max))
    }

    @Test(arguments: ["", ":", "8", "8:", ":12345", "8:12345:1", " 8:12345", "8:12345 ", "+8:12345", "-8:12345", "0x8:12345", "8:99999999999999999999999"])
    func malformedJournalStreamIsNotTheJournal(value: String) {
        #expect(!LogDestination.journalIsConnected(journalStream: value, stderrDevice: 8, stderrInode: 12345))
    }

    @Test func makeHandlerPicksStderrWithoutJournalStream() {
        #expect(LogDestination.makeHandler(label: "keyrotd", environment: [:]) is StderrLogHandler)
        #expect(!LogDestination.journalIsConnected(environment: [:]))
        let other = ["JOURNAL_STREAM": "1:1"]
        #expect(LogDestination.makeHandler(label: "keyrotd", environment: other) is StderrLogHandler)
    }

    @Test func makeHandlerPicksTheJournalWhenJournalStreamNamesThisStderr() throws {
        var info = stat()
        try #require(fstat(STDERR_FILENO, &info) == 0)
        let environment = ["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino)"]
        #expect(LogDestination.journalIsConnected(environment: environment))
        let handler = LogDestination.makeHandler(label: "keyrotd", environment: environment)
        let journal = try #require(handler as? JournalLogHandler)
        #expect(journal.identifier == "keyrotd")
        #expect(journal.label == "keyrotd")
    }
}

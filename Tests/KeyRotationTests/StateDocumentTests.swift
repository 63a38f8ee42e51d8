import Foundation
import Testing
@testable import KeyRotation

@Suite struct StateDocumentTests {
    @Test func aMidRotationRecordRoundTrips() throws {
        var sim = Simulation()
        sim.crashAfter = []
        try sim.run { $0.record.generation == 1 }
        var record = sim.record
        record.phase = .deploying
        record.pending = PendingKey(
            generation: 2, name: "keyrotd/dev-team/g2/abcdef", createAttempted: true, id: "k9",
            secret: Secret("sk-live-123"), createdAt: t0 + .milliseconds(1234), hooksDone: ["/hooks/a"])
        record.lastError = StepFailure(kind: .rateLimited, code: "http_429", message: "slow", retryAfter: .seconds(30))
        record.retryAt = t0 + .seconds(30)
        let document = StateDocument(keys: ["dev-team": record])
        let bytes = try document.encoded()
        let decoded = try StateDocument.decode(bytes, version: StateDocument.schemaVersion)
        #expect(try decoded.encoded() == bytes, "decode then encode gives the same bytes")
        #expect(decoded.keys["dev-team"]?.pending == record.pending)
        #expect(decoded.keys["dev-team"]?.lastError == record.lastError)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("\"2026-09-21T14:13:21.234Z\""), "times are RFC 3339 UTC with milliseconds")
        #expect(text.contains("sk-live-123"), "the pending secret is persisted until deployed")
    }

    /// State files written before instances have no "instance": they load as they
    /// are (nil, the daemon then draws or takes one), and the member is written
    /// between "budget" and "keys", by the encoder and the body writer alike.
    @Test func aStateFileWithoutAnInstanceLoadsAndGainsOne() throws {
        let old = Array(#"{"audit":{"reported":[]},"keys":{}}"#.utf8)
        var document = try StateDocument.decode(old, version: StateDocument.schemaVersion)
        #expect(document.instance == nil)
        #expect(try document.encoded() == old, "nothing added while there is no instance")
        document.instance = "1a2b3c4d"
        let written = try document.encoded()
        #expect(String(decoding: written, as: UTF8.self) == #"{"audit":{"reported":[]},"instance":"1a2b3c4d","keys":{}}"#)
        var writer = StateBodyWriter()
        #expect(try writer.body(of: document) == written)
        #expect(try StateDocument.decode(written, version: StateDocument.schemaVersion).instance == "1a2b3c4d")
    }

    @Test func anUnknownVersionIsRefused() {
        #expect(throws: (any Error).self) { try StateDocument.decode(Array("{\"keys\":{}}".utf8), version: 2) }
    }

    @Test(arguments: [
        ("2026-09-21T14:13:20Z", 0.0),
        ("2026-09-21T14:13:20.5Z", 0.5),
        ("2026-09-21T14:13:20.123456Z", 0.123),
        ("2026-09-21T14:13:20", 0.0),
        ("2026-09-21T14:13:20.25", 0.25),
        ("2026-09-21T16:13:20+02:00", 0.0),
        ("2026-09-21T12:13:20.75-02:00", 0.75),
    ])
    func timestampsWithOrWithoutFractionsAndZone(text: String, fraction: Double) throws {
        let date = try #require(Timestamp.parse(text))
        #expect(abs(date.timeIntervalSince(t0) - fraction) < 0.001, "\(text) -> \(date)")
    }

    @Test func formattingRoundsToTheNearestMillisecond() {
        #expect(Timestamp.format(t0 + .milliseconds(1234)) == "2026-09-21T14:13:21.234Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_790_000_000.9996)) == "2026-09-21T14:13:21.000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: -0.25)) == "1969-12-31T23:59:59.750Z")
    }

    @Test(arguments: ["", "yesterday", "2026-13-01T00:00:00Z", "2026-09-21", "2026-09-21T14:13:20.Z"])
    func badTimestamps(text: String) {
        #expect(Timestamp.parse(text) == nil)
    }
}

@Suite struct SecretTests {
    @Test func aSecretNeverPrints() {
        let secret = Secret("sk-very-secret")
        let invocation = HookInvocation(path: "/h", event: .deploy, key: "k", keyID: "id", oldKeyID: nil, generation: 1, secret: secret)
        var dumped = ""
        dump(invocation, to: &dumped)
        for text in ["\(secret)", String(describing: secret), String(reflecting: secret), "\(invocation)",
                     String(reflecting: invocation), dumped, "\(Action.verifyKey(id: "x", secret: secret))"] {
            #expect(!text.contains("sk-very-secret"), "\(text)")
        }
        #expect(secret.withExposedText { $0 } == "sk-very-secret")
    }
}

import KeyRotation
import Testing

/// A control request's `key` and `key_id` are checked before they are logged or used.
@Suite struct ControlRequestTests {
    @Test(arguments: ["alpha", "dev-team", "a.b_c-9", String(repeating: "k", count: 64)])
    func validKeyNamesPass(_ key: String) {
        #expect(ControlRequest(command: .rotate, key: key).fieldProblem == nil)
    }

    @Test(arguments: [
        "", "alpha\n", "al pha", "-alpha", "alpha\u{1b}[2J", "é", String(repeating: "k", count: 65),
        String(repeating: "x", count: 65_000),
    ])
    func invalidKeyNamesAreRefusedWithoutQuotingThem(_ key: String) throws {
        let problem = try #require(ControlRequest(command: .revoke, key: key).fieldProblem)
        #expect(problem.code == "bad_request")
        #expect(key.isEmpty || !problem.message.contains(key))
    }

    @Test func keyIDsArePlausibleIDsOnly() {
        #expect(ControlRequest(command: .deleteOrphan, keyID: "0c4b1e2a-7f1e-4c3b-9a57-5d1f2e3c4b5a").fieldProblem == nil)
        for bad in ["", "id\nforged", "id with space", String(repeating: "a", count: 129), "id\u{7f}"] {
            #expect(ControlRequest(command: .deleteOrphan, keyID: bad).fieldProblem?.code == "bad_request", "\(bad.debugDescription)")
        }
    }
}

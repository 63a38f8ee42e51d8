import Foundation
import Testing
@testable import KeyRotation

@Suite struct SourceLocatorTests {
    static let text = """
        # comment
        [daemon]
        state_file = "/x"

          [ keys . "dev-team" ]
        \tprovider = "mistral"
        "hooks" = ["/a"]
        [keys.ünï]
        hooks=[]
        """

    @Test func findsHeadersAndKeys() {
        let locator = SourceLocator(Self.text)
        #expect(locator.line(table: ["daemon"], key: nil) == 2)
        #expect(locator.line(table: ["daemon"], key: "state_file") == 3)
        #expect(locator.line(table: ["keys", "dev-team"], key: nil) == 5)
        #expect(locator.line(table: ["keys", "dev-team"], key: "provider") == 6)
        #expect(locator.line(table: ["keys", "dev-team"], key: "hooks") == 7)
        #expect(locator.line(table: ["keys", "dev-team"], key: "missing") == 5, "a missing key falls back to its table")
        #expect(locator.line(table: ["keys", "ünï"], key: "hooks") == 9)
        #expect(locator.line(table: ["nowhere"], key: nil) == nil)
    }

    @Test func countsCRLFLinesToo() {
        let locator = SourceLocator(Self.text.replacingOccurrences(of: "\n", with: "\r\n"))
        #expect(locator.line(table: ["keys", "dev-team"], key: "hooks") == 7)
        #expect(locator.line(table: ["keys", "ünï"], key: "hooks") == 9)
    }
}

import KeyRotation
import Testing

@Suite struct TerminalTextTests {
    @Test(arguments: [
        ("plain dev-team", "plain dev-team"),
        ("Zürich — ok", "Zürich — ok"),
        ("a\nb\r\tc", #"a\nb\r\tc"#),
        ("back\\slash", #"back\\slash"#),
        ("\u{1b}[2J\u{7}\u{0}\u{7f}", #"\x1B[2J\x07\x00\x7F"#),
        ("csi\u{9b}31m", #"csi\u{009B}31m"#),
        ("name\u{202E}gpj.exe\u{2066}x\u{2069}", #"name\u{202E}gpj.exe\u{2066}x\u{2069}"#),
        ("line\u{2028}sep", #"line\u{2028}sep"#),
    ])
    func escapesWhatCouldDriveATerminal(_ input: String, _ expected: String) {
        #expect(TerminalText.escaped(input) == expected)
    }

    @Test func nothingPrintedIsEverAControlCharacter() {
        for value in UInt32(0)..<0x3000 {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let out = TerminalText.escaped("x\(Character(scalar))y")
            #expect(!out.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0 == "\u{202E}" },
                    "U+\(String(value, radix: 16))")
        }
    }
}

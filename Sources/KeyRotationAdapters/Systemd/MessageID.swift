/// The journal `MESSAGE_ID` of each keyrotd event type: fixed 128-bit ids, written as
/// 32 lowercase hex digits, that `journalctl MESSAGE_ID=…` selects on and that
/// `systemd/keyrotd.catalog` explains for `journalctl -x`.
///
/// Contract: an id never changes once shipped and is never reused for another event;
/// every id here has exactly one catalog entry (a test checks both ways). The names are
/// `AuditEvent.Kind` raw values plus the daemon's own events.
public enum MessageID {
    /// Every event name with its id, in the order the catalog lists them.
    public static let all: [(event: String, id: String)] = [
        ("rotation-started", "551fe51f36d24b6299da76558af38bc6"),
        ("key-created", "0ed34496df324d45a1960b603b0a3fc3"),
        ("key-verified", "170e32d0085a4a6f9f548a6e3a0fcb30"),
        ("hook-succeeded", "1491bcd27e174f7fac71f787974ffe00"),
        ("deployed", "250a172583544bdca730100b9e923989"),
        ("overlap-started", "073c757b7cfe4443a2ac6537b3e37b77"),
        ("key-retired", "b83ceba9c9df4f709f1839513225e4f0"),
        ("rotation-completed", "1805a0d94a0f43cbb712c1686b7bfa81"),
        ("step-failed", "ff73cf1537de4977937cf4aa37f7cdb8"),
        ("blocked", "ed6b7512c994438595b9018205a8290d"),
        ("orphan-found", "aa9edcbf91c94b709c5f22a7e7a34bc2"),
        ("orphan-deleted", "2ceaacbf1f29461f814f6a99d14eaa22"),
        ("adopted", "08295214840e417faec9082834874679"),
        ("revoke-requested", "8dffa781bb9647d789915669d7206a4e"),
        ("rotate-requested", "d6a80ed2d48c45c495c8e92e16a8707d"),
        ("caught-up", "4b07d02b2b264ee7b1b6cc0401757ea7"),
        ("hook-output", "0d2ba48f1a7a4ce48bad81f946f768dc"),
        ("config-reloaded", "135f05f5ad2e4e5fa3a651dd02e3d6ed"),
        ("config-rejected", "f02bbcb2c8a74bb693050bbd97a5d23a"),
        ("daemon-started", "20817fa19b9c426a964d2df37ba697ba"),
        ("daemon-stopping", "f3a8850dd136419a9af128c5c97737fd"),
        ("audit-finding", "835389ad2d0d4e189cef637b57547a31"),
        ("retirement-extended", "aef4508143e447e8931361f05f743fd7"),
        ("retirement-forced", "e0327b7524304e8abc525d19191722d3"),
        ("budget-threshold", "a0003068618d42799a74d581100a356e"),
        ("control-request", "8a8fb34b15344c9f8a7953768c9c70e6"),
        ("instance-drawn", "772729a27af14931be144338e381d7b3"),
        ("instance-changed", "c91b730159844ffe82181e537e67e1a2"),
    ]

    private static let byEvent: [String: String] = Dictionary(uniqueKeysWithValues: all.map { ($0.event, $0.id) })

    /// The id of the event named `name` (e.g. "step-failed", "hook-output"), or nil for
    /// a name that has none.
    public static func forEvent(_ name: String) -> String? {
        byEvent[name]
    }
}

/// An amount of the organisation's currency in nano-units (10⁻⁹), so sums are exact.
///
/// A `Double` would lose cents over a month of small requests and compare unreliably
/// against a budget; 64-bit nano-units hold up to about 9.2 billion.
public struct Money: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var nanos: Int64

    public init(nanos: Int64) {
        self.nanos = nanos
    }

    public static let zero = Money(nanos: 0)

    /// From a configuration number (`monthly_budget = 50.0`), rounded to the nearest nano-unit;
    /// nil when negative, not finite or too large.
    public init?(_ value: Double) {
        guard value.isFinite, value >= 0, value < 9e9 else { return nil }
        self.nanos = Int64((value * 1e9).rounded())
    }

    /// `self` is a price per million tokens: what `tokens` cost, rounded up.
    public func perMillion(times tokens: Int) -> Money {
        let tokens = Int64(max(0, tokens))
        let whole = (tokens / 1_000_000).multipliedReportingOverflow(by: nanos)
        let rest = (tokens % 1_000_000) * nanos  // < 10⁶ · 9·10¹⁸? no: nanos < 9·10¹⁸ / 10⁶ checked below
        guard !whole.overflow, nanos <= Int64.max / 1_000_000 else { return Money(nanos: .max) }
        let (sum, overflow) = whole.partialValue.addingReportingOverflow((rest + 999_999) / 1_000_000)
        return overflow ? Money(nanos: .max) : Money(nanos: sum)
    }

    public static func + (lhs: Money, rhs: Money) -> Money {
        let (sum, overflow) = lhs.nanos.addingReportingOverflow(rhs.nanos)
        return Money(nanos: overflow ? .max : sum)
    }

    public static func - (lhs: Money, rhs: Money) -> Money {
        Money(nanos: lhs.nanos - rhs.nanos)
    }

    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.nanos < rhs.nanos }

    /// "12.345678" (six decimals: a millionth of a cent is below any price that matters).
    public var description: String {
        let micros = (nanos + (nanos >= 0 ? 500 : -500)) / 1000
        let sign = micros < 0 ? "-" : ""
        let magnitude = micros.magnitude
        let fraction = String(magnitude % 1_000_000)
        return "\(sign)\(magnitude / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    /// As a JSON/TOML number.
    public var asDouble: Double { Double(nanos) / 1e9 }
}

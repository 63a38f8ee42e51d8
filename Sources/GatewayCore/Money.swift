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

    /// `self` is a price per million tokens: what `tokens` cost, rounded up (toward
    /// +∞), so a sum of costs never undercounts. Saturates at `.max` (and a negative
    /// price at `.min`) instead of trapping; negative token counts count as zero.
    public func perMillion(times tokens: Int) -> Money {
        guard tokens > 0, nanos != 0 else { return .zero }
        // The product needs up to 127 bits: multiply the magnitudes full-width.
        let product = nanos.magnitude.multipliedFullWidth(by: UInt64(tokens))
        let million: UInt64 = 1_000_000
        guard product.high < million else { return Money(nanos: nanos > 0 ? .max : .min) }
        let (quotient, remainder) = million.dividingFullWidth(product)
        if nanos > 0 {
            guard quotient < UInt64(Int64.max) else { return Money(nanos: .max) }
            return Money(nanos: Int64(quotient) + (remainder > 0 ? 1 : 0))
        }
        // A negative price rounds toward +∞: the magnitude's remainder is dropped.
        guard quotient < Int64.min.magnitude else { return Money(nanos: .min) }
        return Money(nanos: -Int64(quotient))
    }

    /// Saturating, like every Money operation: a cost or budget sum never wraps or traps.
    public static func + (lhs: Money, rhs: Money) -> Money {
        let (sum, overflow) = lhs.nanos.addingReportingOverflow(rhs.nanos)
        return overflow ? Money(nanos: rhs.nanos > 0 ? .max : .min) : Money(nanos: sum)
    }

    public static func - (lhs: Money, rhs: Money) -> Money {
        let (difference, overflow) = lhs.nanos.subtractingReportingOverflow(rhs.nanos)
        return overflow ? Money(nanos: rhs.nanos < 0 ? .max : .min) : Money(nanos: difference)
    }

    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.nanos < rhs.nanos }

    /// "12.345678" (six decimals: a millionth of a cent is below any price that matters).
    public var description: String {
        // On the magnitude: `nanos ± 500` would overflow near the ends of Int64.
        let micros = (nanos.magnitude + 500) / 1000
        let sign = nanos < 0 && micros > 0 ? "-" : ""
        let fraction = String(micros % 1_000_000)
        return "\(sign)\(micros / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    /// As a JSON/TOML number.
    public var asDouble: Double { Double(nanos) / 1e9 }
}

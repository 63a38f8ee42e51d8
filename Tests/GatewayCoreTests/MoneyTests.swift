import GatewayCore
import Testing

@Suite struct MoneyTests {
    @Test func pricesRoundUpToTheNextNanoUnit() throws {
        let price = try #require(Money(0.1))  // 0.1 per million tokens = 100 nano-units per token
        #expect(price.perMillion(times: 1) == Money(nanos: 100))
        #expect(price.perMillion(times: 1_000_000) == Money(nanos: 100_000_000))
        let tiny = Money(nanos: 1)  // a millionth of a nano-unit per token
        #expect(tiny.perMillion(times: 1) == Money(nanos: 1))
        #expect(tiny.perMillion(times: 1_000_000) == Money(nanos: 1))
        #expect(tiny.perMillion(times: 1_000_001) == Money(nanos: 2))
        #expect(Money(nanos: 3).perMillion(times: 333_333) == Money(nanos: 1))  // 0.999999 up to 1
        #expect(Money(nanos: 3).perMillion(times: 333_334) == Money(nanos: 2))  // 1.000002 up to 2
    }

    @Test func noTokensOrNoPriceCostNothing() {
        #expect(Money(nanos: 5).perMillion(times: 0) == .zero)
        #expect(Money(nanos: 5).perMillion(times: -7) == .zero)
        #expect(Money.zero.perMillion(times: .max) == .zero)
    }

    /// Prices above 9,223 per million tokens and token counts near Int.max: exact where
    /// the result fits, `.max` where it does not, never a trap.
    @Test func largePricesAndCountsAreExactOrSaturate() {
        // 10,000 per million: (tokens % 10⁶) · nanos overflowed Int64 and trapped.
        let expensive = Money(nanos: 10_000_000_000_000)
        #expect(expensive.perMillion(times: 999_999) == Money(nanos: 9_999_990_000_000))
        #expect(expensive.perMillion(times: 1) == Money(nanos: 10_000_000))
        #expect(Money(nanos: .max).perMillion(times: 1) == Money(nanos: 9_223_372_036_855))
        #expect(Money(nanos: .max).perMillion(times: 1_000_000) == Money(nanos: .max))
        #expect(Money(nanos: .max).perMillion(times: 1_000_001) == Money(nanos: .max))
        #expect(Money(nanos: .max).perMillion(times: .max) == Money(nanos: .max))
        #expect(Money(nanos: 1_000_000).perMillion(times: .max) == Money(nanos: .max))  // exactly Int64.max
        #expect(Money(nanos: 1_000_000).perMillion(times: .max - 1) == Money(nanos: .max - 1))
        #expect(Money(nanos: 2_000_000).perMillion(times: .max / 2 + 1) == Money(nanos: .max))  // 2⁶³
        #expect(Money(nanos: 1).perMillion(times: .max) == Money(nanos: 9_223_372_036_855))
    }

    @Test func negativePricesRoundTowardPlusInfinityAndSaturateAtMin() {
        #expect(Money(nanos: -1).perMillion(times: 1) == .zero)
        #expect(Money(nanos: -1_500_000).perMillion(times: 1) == Money(nanos: -1))
        #expect(Money(nanos: -2_000_000).perMillion(times: 3) == Money(nanos: -6))
        #expect(Money(nanos: .min).perMillion(times: 1_000_000) == Money(nanos: .min))
        #expect(Money(nanos: .min).perMillion(times: .max) == Money(nanos: .min))
    }

    @Test func sumsAndDifferencesSaturate() {
        #expect(Money(nanos: .max) + Money(nanos: 1) == Money(nanos: .max))
        #expect(Money(nanos: .min) + Money(nanos: -1) == Money(nanos: .min))
        #expect(Money(nanos: .min) - Money(nanos: 1) == Money(nanos: .min))
        #expect(Money(nanos: .max) - Money(nanos: -1) == Money(nanos: .max))
        #expect(Money(nanos: 5) - Money(nanos: 7) == Money(nanos: -2))
        #expect(Money(nanos: 5) + Money(nanos: -7) == Money(nanos: -2))
    }

    @Test func descriptionHasSixDecimals() {
        #expect(Money(nanos: 12_345_678_900).description == "12.345679")
        #expect(Money.zero.description == "0.000000")
        #expect(Money(nanos: 499).description == "0.000000")
        #expect(Money(nanos: 500).description == "0.000001")
        #expect(Money(nanos: -499).description == "0.000000")
        #expect(Money(nanos: -1_500).description == "-0.000002")
        #expect(Money(nanos: .max).description == "9223372036.854776")
        #expect(Money(nanos: .min).description == "-9223372036.854776")
    }

    @Test func configurationNumbersRoundToTheNearestNanoUnit() throws {
        #expect(Money(0)?.nanos == 0)
        #expect(Money(-0.0)?.nanos == 0)
        #expect(Money(0.1)?.nanos == 100_000_000)  // 0.1 · 10⁹ is 100000000.00000001 in binary
        #expect(Money(0.3)?.nanos == 300_000_000)  // and this one 299999999.99999994
        #expect(Money(50.0)?.nanos == 50_000_000_000)
        #expect(Money(1e-9)?.nanos == 1)
        #expect(Money(4e-10)?.nanos == 0)
        #expect(Money(6e-10)?.nanos == 1)
        #expect(Money(1234.567890123)?.nanos == 1_234_567_890_123)
        let largest = try #require(Money(9e9.nextDown))
        #expect(largest.nanos > 8_999_999_999_000_000_000 && largest.nanos < Int64.max)
    }

    @Test(arguments: [-1e-9, -1, -.infinity, .infinity, .nan, .signalingNaN, 9e9, 1e300, -.leastNonzeroMagnitude])
    func configurationNumbersOutOfRangeAreRefused(value: Double) {
        #expect(Money(value) == nil)
    }
}

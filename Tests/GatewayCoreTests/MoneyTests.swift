import GatewayCore
import Testing

@Suite struct MoneyTests {
    @Test func pricesRoundUpToTheNextNanoUnit() throws {
        let price = try #require(Money(0.1))  // 0.1 per million tokens = 0.1 nano-units per token
        #expect(price.perMillion(times: 1) == Money(nanos: 1))
        #expect(price.perMillion(times: 10) == Money(nanos: 1))
        #expect(price.perMillion(times: 11) == Money(nanos: 2))
        #expect(price.perMillion(times: 1_000_000) == Money(nanos: 100_000_000))
    }

    @Test func descriptionHasSixDecimals() {
        #expect(Money(nanos: 12_345_678_900).description == "12.345679")
        #expect(Money.zero.description == "0.000000")
    }
}

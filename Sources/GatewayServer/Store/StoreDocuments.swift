import GatewayCore
import KeyRotation

/// `keys.state`: the upstream keys the gateway was given, by keyrotd key name.
struct KeysDocument: Codable {
    var keys: [String: UpstreamKey]
}

/// `spend.state`: spend per role and month, with the reservations still open when it was
/// written (a restart charges those in full).
struct SpendDocument: Codable {
    struct Month: Codable {
        var role: String
        var month: String
        var settledNanos: Int64
        var reservedNanos: [String: Int64]
        var alertsRaised: [Int]
        var requests: Int
        var promptTokens: Int
        var completionTokens: Int

        enum CodingKeys: String, CodingKey {
            case role, month, requests
            case settledNanos = "settled_nanos"
            case reservedNanos = "reserved_nanos"
            case alertsRaised = "alerts_raised"
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
        }
    }

    var months: [Month]
    var nextReservation: UInt64

    enum CodingKeys: String, CodingKey {
        case months
        case nextReservation = "next_reservation"
    }

    init(_ book: SpendBook) {
        months = book.entries.map { key, entry in
            Month(
                role: key.role, month: key.month.description, settledNanos: entry.settled.nanos,
                reservedNanos: Dictionary(uniqueKeysWithValues: entry.reservations.map { (String($0.key), $0.value.nanos) }),
                alertsRaised: entry.alertsRaised.sorted(), requests: entry.requests,
                promptTokens: entry.promptTokens, completionTokens: entry.completionTokens)
        }.sorted { ($0.month, $0.role) < ($1.month, $1.role) }
        nextReservation = book.nextReservation
    }

    /// The book this document holds; nil names what is wrong.
    func book() -> Result<SpendBook, SpendDocumentProblem> {
        var entries: [SpendBook.Key: SpendBook.Entry] = [:]
        for month in months {
            guard let period = BudgetMonth(month.month) else {
                return .failure(SpendDocumentProblem(message: "month \"\(month.month)\" is not YYYY-MM"))
            }
            var entry = SpendBook.Entry()
            entry.settled = Money(nanos: month.settledNanos)
            for (id, nanos) in month.reservedNanos {
                guard let number = UInt64(id) else {
                    return .failure(SpendDocumentProblem(message: "reservation id \"\(id)\" is not a number"))
                }
                entry.reservations[number] = Money(nanos: nanos)
            }
            entry.alertsRaised = Set(month.alertsRaised)
            entry.requests = month.requests
            entry.promptTokens = month.promptTokens
            entry.completionTokens = month.completionTokens
            entries[SpendBook.Key(role: month.role, month: period)] = entry
        }
        return .success(SpendBook.restored(entries: entries, nextReservation: nextReservation))
    }
}

struct SpendDocumentProblem: Error {
    var message: String
}

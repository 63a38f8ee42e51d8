import Foundation
import KeyRotation

/// The month's spend from the admin billing API: the organisation's completion
/// limit (`/v1/admin/spend-limit`) and each workspace's own limit
/// (`/v1/admin/workspaces`) against that workspace's usage (`/v1/admin/usage`).
///
/// Mistral gives no per-workspace spend total, so a workspace's spend is the sum
/// of every `amount` in its usage report, whatever category it sits in: new
/// categories count without a change here. Scopes without a monthly limit have
/// no figure. Calls go through the provider's pacer and failure mapping.
extension MistralProvider: SpendSource {
    public func spend(now: Date) async throws(StepFailure) -> [SpendFigure] {
        var figures: [SpendFigure] = []
        if let organization = try await organizationSpend() { figures.append(organization) }
        let limited = try await workspaces()
            .compactMap { workspace in workspace.monthlyLimit.map { (workspace, $0) } }
            .sorted { ($0.0.name ?? "", $0.0.uuid) < ($1.0.name ?? "", $1.0.uuid) }
        let (year, month) = Self.utcYearMonth(now)
        for (workspace, limit) in limited {
            let spent = try await workspaceSpend(workspace.uuid, year: year, month: month)
            figures.append(SpendFigure(
                scope: .workspace, workspaceID: workspace.uuid, workspaceName: workspace.name, spent: spent,
                limit: limit, currency: workspace.spend_limit?.currency))
        }
        return figures
    }

    private func organizationSpend() async throws(StepFailure) -> SpendFigure? {
        let response = try await call(.get, "/v1/admin/spend-limit")
        guard let limits = try? JSONDecoder().decode(LimitsJSON.self, from: Data(response.body)).limits else {
            throw Self.badResponse("spend-limit answered 200 with a body that is not a limits object")
        }
        let completion = limits.completion
        guard completion?.no_monthly_limit != true, let limit = completion?.usage_limit, limit > 0 else { return nil }
        let spent = completion?.total_usage ?? (completion?.usage ?? 0) + (completion?.vibe_usage ?? 0)
        return SpendFigure(scope: .organization, spent: spent, limit: limit, currency: limits.currency)
    }

    /// Every (unarchived) workspace, all pages.
    private func workspaces() async throws(StepFailure) -> [WorkspaceJSON] {
        var workspaces: [WorkspaceJSON] = []
        var seen: Set<String> = []
        for page in 1...Self.maxPages {
            let response = try await call(.get, "/v1/admin/workspaces?page=\(page)&page_size=\(Self.pageSize)")
            guard let listed = try? JSONDecoder().decode(WorkspacePageJSON.self, from: Data(response.body)) else {
                throw Self.badResponse("workspaces answered 200 with a body that is not a workspace list")
            }
            let items = listed.items ?? []
            let fresh = items.filter { seen.insert($0.uuid).inserted }
            workspaces += fresh
            // As with keys: a short page, a page with nothing new, or the total reached ends the list.
            if items.count < Self.pageSize || fresh.isEmpty || listed.total.map({ workspaces.count >= $0 }) == true {
                return workspaces
            }
        }
        throw Self.badResponse("the workspace list did not end after \(Self.maxPages) pages")
    }

    private func workspaceSpend(_ id: String, year: Int, month: Int) async throws(StepFailure) -> Double {
        let escaped = id.addingPercentEncoding(withAllowedCharacters: Self.queryValueAllowed) ?? id
        let response = try await call(.get, "/v1/admin/usage?month=\(month)&year=\(year)&workspace_id=\(escaped)")
        guard let usage = try? JSONDecoder().decode(UsageJSON.self, from: Data(response.body)) else {
            throw Self.badResponse("usage answered 200 with a body that is not a usage report")
        }
        return usage.amounts.total
    }

    private static let queryValueAllowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-"))

    private static func badResponse(_ message: String) -> StepFailure {
        StepFailure(kind: .transient, code: "bad_response", message: message)
    }

    private static func utcYearMonth(_ date: Date) -> (year: Int, month: Int) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let parts = calendar.dateComponents([.year, .month], from: date)
        return (parts.year ?? 1970, parts.month ?? 1)
    }
}

// MARK: - Wire types (only the fields keyrotd reads; the rest is ignored)

private struct LimitsJSON: Decodable {
    var limits: LimitsContextJSON
}

private struct LimitsContextJSON: Decodable {
    var completion: UsageLimitsJSON?
    var currency: String?
}

private struct UsageLimitsJSON: Decodable {
    var no_monthly_limit: Bool?
    var usage: Double?
    var vibe_usage: Double?
    var total_usage: Double?
    var usage_limit: Double?
}

private struct WorkspacePageJSON: Decodable {
    var total: Int?
    var items: [WorkspaceJSON]?
}

private struct WorkspaceJSON: Decodable {
    var uuid: String
    var name: String?
    var spend_limit: WorkspaceSpendLimitJSON?

    /// The monthly limit, if the workspace has one of its own.
    var monthlyLimit: Double? {
        guard let limit = spend_limit, limit.no_monthly_limit != true, let value = limit.value, value > 0 else { return nil }
        return value
    }
}

private struct WorkspaceSpendLimitJSON: Decodable {
    var value: Double?
    var currency: String?
    var no_monthly_limit: Bool?
}

/// A usage report: any JSON object, its amounts summed.
private struct UsageJSON: Decodable {
    var amounts: AmountSum

    init(from decoder: any Decoder) throws {
        _ = try decoder.container(keyedBy: AnyKey.self)
        amounts = try AmountSum(from: decoder)
    }
}

/// The sum of every `amount` field (a number, or a string holding one) anywhere
/// in a JSON value. Prices are `price` fields and do not count.
private struct AmountSum: Decodable {
    var total: Double = 0

    init(from decoder: any Decoder) throws {
        if let object = try? decoder.container(keyedBy: AnyKey.self) {
            for key in object.allKeys {
                if key.stringValue == "amount" {
                    total += (try? object.decode(Double.self, forKey: key))
                        ?? (try? object.decode(String.self, forKey: key)).flatMap(Double.init) ?? 0
                } else {
                    total += (try? object.decode(AmountSum.self, forKey: key))?.total ?? 0
                }
            }
        } else if var array = try? decoder.unkeyedContainer() {
            while !array.isAtEnd {
                // Scalars decode as 0; anything the decoder cannot step over ends the walk.
                guard let element = try? array.decode(AmountSum.self) else { break }
                total += element.total
            }
        }
    }
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

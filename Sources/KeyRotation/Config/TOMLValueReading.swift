import Foundation
import TOMLKit

/// TOML text to a table, the way every keyrotd configuration is read: malformed table
/// headers are caught before toml++ sees them (it would assert, not report), and a
/// syntax error carries its line and column.
public enum TOMLDocument {
    public static func parse(_ text: String) -> Result<TOMLTable, ConfigError> {
        if let finding = TableHeaderCheck.firstMalformedHeader(in: text) {
            return .failure(ConfigError(problems: [finding.problem]))
        }
        do {
            return .success(try TOMLTable(string: text))
        } catch let error as TOMLParseError {
            return .failure(ConfigError(problems: [ConfigProblem(
                .line(error.source.begin.line, column: error.source.begin.column),
                "TOML syntax error: \(error.description)")]))
        } catch {
            return .failure(ConfigError(problems: [ConfigProblem(.file, "cannot parse: \(error)")]))
        }
    }
}

/// Typed reads of TOML values, each problem reported at its line. Shared by keyrotd's
/// and keyrotd-gateway's configuration parsers so both speak the same rules and messages.
public protocol TOMLValueReading {
    var locator: SourceLocator { get }
    var problems: [ConfigProblem] { get set }
    /// An alert or consumer hook path the adapter must check (trusted executable).
    mutating func addHookCheck(_ hook: String, _ table: [String], _ key: String)
}

extension TOMLValueReading {
    /// Ten years: anything longer is a typo, and keeps date arithmetic far from overflow.
    public static var longestSpan: TimeSpan { .days(3650) }

    public mutating func checkKeys(_ table: TOMLTable?, table path: [String], allowed: [String], what: String) {
        guard let table else { return }
        for key in table.keys.sorted() where !allowed.contains(key) {
            let place = path.isEmpty ? "" : " in [\(path.joined(separator: "."))]"
            if what == "section" {
                report([key], nil, "unknown section [\(key)] (known: \(allowed.joined(separator: ", ")))", tomlPath: key)
            } else {
                report(path, key, "unknown key \"\(key)\"\(place) (known: \(allowed.joined(separator: ", ")))")
            }
        }
    }

    public mutating func table(_ parent: TOMLTable?, _ key: String, parent path: [String]) -> TOMLTable? {
        guard let value = parent?[key] else { return nil }
        guard let table = value.table else {
            report(path, key, "must be a table ([\((path + [key]).joined(separator: "."))])")
            return nil
        }
        return table
    }

    public mutating func string(_ table: TOMLTable?, _ path: [String], _ key: String) -> String? {
        guard let value = table?[key] else { return nil }
        guard let text = value.string else {
            report(path, key, "must be a string, not \(value.type)")
            return nil
        }
        return text
    }

    public mutating func int(_ table: TOMLTable?, _ path: [String], _ key: String) -> Int? {
        guard let value = table?[key] else { return nil }
        guard let number = value.int else {
            report(path, key, "must be an integer, not \(value.type)")
            return nil
        }
        return number
    }

    public mutating func stringArray(_ table: TOMLTable?, _ path: [String], _ key: String) -> [String]? {
        guard let value = table?[key] else { return nil }
        guard let array = value.array else {
            report(path, key, "must be an array of strings, not \(value.type)")
            return nil
        }
        var result: [String] = []
        for (index, element) in array.enumerated() {
            guard let text = element.string else {
                report(path, key, "element \(index + 1) must be a string, not \(element.type)")
                return nil
            }
            result.append(text)
        }
        return result
    }

    /// A duration in systemd time-span syntax ("90d", "1h 30min"); an integer is seconds.
    public mutating func span(_ table: TOMLTable?, _ path: [String], _ key: String) -> TimeSpan? {
        guard let value = table?[key] else { return nil }
        if let seconds = value.int {
            guard seconds >= 0 else {
                report(path, key, "must not be negative")
                return nil
            }
            return .seconds(Int64(seconds))
        }
        guard let text = value.string else {
            report(path, key, "must be a duration such as \"90d\" or \"1h 30min\", not \(value.type)")
            return nil
        }
        let span: TimeSpan
        do {
            span = try TimeSpan(parsing: text)
        } catch {
            report(path, key, "bad duration: \(error.description)")
            return nil
        }
        guard span <= Self.longestSpan else {
            report(path, key, "\(span) is longer than keyrotd allows (\(Self.longestSpan))")
            return nil
        }
        return span
    }

    public mutating func positiveSpan(_ table: TOMLTable?, _ path: [String], _ key: String) -> TimeSpan? {
        guard let span = span(table, path, key) else { return nil }
        guard span > .zero else {
            report(path, key, "must be longer than zero")
            return nil
        }
        return span
    }

    public mutating func absolutePath(_ table: TOMLTable?, _ path: [String], _ key: String) -> String? {
        guard let text = string(table, path, key) else { return nil }
        guard text.hasPrefix("/") else {
            report(path, key, "\"\(text)\" is not an absolute path")
            return nil
        }
        return text
    }

    public mutating func hookPaths(_ paths: [String], table path: [String], key: String) -> [String] {
        var seen: Set<String> = []
        for hook in paths where !seen.insert(hook).inserted {
            report(path, key, "\(hook) is listed twice (hooks are tracked by path; run it once)")
        }
        for (index, hook) in paths.enumerated() {
            if hook.hasPrefix("/") {
                addHookCheck(hook, path, key)
            } else {
                report(path, key, "element \(index + 1): \"\(hook)\" is not an absolute path")
            }
        }
        return paths
    }

    public func location(_ table: [String], _ key: String?) -> ConfigProblem.Location {
        if let line = locator.line(table: table, key: key) { return .line(line, column: nil) }
        return .path((table + (key.map { [$0] } ?? [])).joined(separator: "."))
    }

    public mutating func report(_ table: [String], _ key: String?, _ message: String, tomlPath: String? = nil) {
        let path = tomlPath ?? (table + (key.map { [$0] } ?? [])).joined(separator: ".")
        problems.append(ConfigProblem(location(table, key), path: path.isEmpty ? nil : path, message))
    }
}

/// The rule for a URL that a secret travels to (a provider's `base_url`, the gateway's
/// `upstream`): https anywhere, plain http only to a loopback address, no credentials,
/// query or fragment.
public enum SecretBearingURL {
    /// nil when `text` may be a provider base URL: https, or plain http to a loopback address.
    public static func problem(_ text: String) -> String? {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty
        else {
            return "\"\(text)\" is not an absolute URL"
        }
        if components.user != nil || components.password != nil {
            return "must not carry credentials in the URL"
        }
        if components.query != nil || components.fragment != nil {
            return "must not have a query or fragment"
        }
        switch scheme {
        case "https":
            return nil
        case "http":
            return LoopbackAddress.contains(host) ? nil : "plain http is allowed only for loopback addresses; use https"
        default:
            return "unsupported scheme \"\(scheme)\"; use https"
        }
    }
}

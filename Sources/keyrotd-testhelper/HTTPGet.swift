import Foundation
import KeyRotation
import KeyRotationAdapters
import Synchronization

/// `http-get URL CAFILE|- PROXY|-`: one GET through `HTTPClient` (bearer "probe"),
/// printing "status N" or "error CODE". For the egress tests that need a client
/// with its own environment: proxy variables, or an OpenSSL configuration that
/// allows old TLS versions.
func httpGet(_ arguments: ArraySlice<String>) -> Never {
    let arguments = Array(arguments)
    guard arguments.count == 3 else { fail("usage: keyrotd-testhelper http-get URL CAFILE|- PROXY|-", ExitCode.usage) }
    let egress = HTTPEgress(
        proxy: arguments[2] == "-" ? nil : arguments[2], caFile: arguments[1] == "-" ? nil : arguments[1], caMode: .replace)
    let client = HTTPClient(connectTimeout: .seconds(5), totalTimeout: .seconds(10), egress: egress)
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    Task {
        do {
            let response = try await client.perform(HTTPRequest(method: .get, url: arguments[0], bearer: Secret("probe")))
            outcome.line.withLock { $0 = "status \(response.status)" }
        } catch {
            let code = (error as? HTTPError)?.code.rawValue ?? "\(error)"
            outcome.line.withLock { $0 = "error \(code)" }
        }
        done.signal()
    }
    done.wait()
    say(outcome.line.withLock { $0 })
    exit(0)
}

final class Outcome: Sendable {
    let line = Mutex<String>("")
}

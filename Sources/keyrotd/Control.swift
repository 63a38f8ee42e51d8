import ArgumentParser
import Foundation
import KeyRotation
import KeyRotationAdapters

/// Options of the commands that talk to the running daemon.
struct SocketOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file (for the socket path).", valueName: "path"))
    var config: String = ConfigLoaderDefaults.path
    @Option(help: ArgumentHelp("Control socket (default: from the configuration, else /run/keyrotd/control.sock).", valueName: "path"))
    var socket: String?

    /// The socket path: --socket, else the configuration's `control_socket` (read
    /// even from a configuration with problems), else the default.
    var socketPath: String {
        if let socket { return socket }
        let environment = ProcessInfo.processInfo.environment
        let loaded = ConfigLoader.load(path: config, environment: environment)
        return DaemonSettings.controlSocket(configured: loaded.daemon?.controlSocket, environment: environment)
    }
}

enum Control {
    /// Sends one request and returns its result; every failure becomes a message
    /// on stderr and a sysexits code: no daemon 69, not allowed 77, refused 75
    /// (try again later) or 65 (bad request), unknown key 64.
    static func call<R: Codable & Sendable>(
        _ request: ControlRequest, socket: String, expecting: R.Type, timeout: Duration = .seconds(30)
    ) throws -> R {
        let response: ControlResponse<R>
        do {
            response = try ControlClient.send(request, to: socket, expecting: R.self, timeout: timeout)
        } catch {
            Console.error("keyrotd: \(error.message)")
            throw ExitCode(error.exitCode)
        }
        guard response.ok, let result = response.result else {
            let error = response.error ?? ControlError(code: "bad_response", message: "the daemon answered neither a result nor an error")
            Console.error("keyrotd: \(error.message)")
            throw exitCode(for: error)
        }
        return result
    }

    static func exitCode(for error: ControlError) -> ExitCode {
        switch error.code {
        case "forbidden": .permissionDenied
        case "unknown_key": .usage
        case "bad_request", "unsupported_version", "too_large": .dataError
        case "provider": .unavailable
        case "shutting_down", "busy", "timeout", "refused": .temporaryFailure
        default: .unavailable
        }
    }
}

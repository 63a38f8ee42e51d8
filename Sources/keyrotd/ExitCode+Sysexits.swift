import ArgumentParser

/// sysexits(3), the codes an operator's scripts and systemd's RestartPreventExitStatus= expect.
extension ExitCode {
    static let usage = ExitCode(64)
    static let dataError = ExitCode(65)
    static let unavailable = ExitCode(69)
    static let temporaryFailure = ExitCode(75)
    static let permissionDenied = ExitCode(77)
    static let configurationError = ExitCode(78)
}

import Foundation
import GatewayCore
import Glibc
import Hummingbird
import KeyRotation
import KeyRotationAdapters
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import UnixSignals

/// `keyrotd-gateway run`: loads the configuration and the state, serves every listener
/// and the admin socket, tells systemd when it is ready, pings the watchdog, reloads on
/// SIGHUP and stops on SIGTERM/SIGINT letting requests in flight finish.
public enum GatewayRuntime {
    public struct StartFailure: Error, CustomStringConvertible {
        public var exitCode: Int32
        public var description: String
    }

    public static func run(configPath: String, environment: [String: String], logger: Logger) async throws(StartFailure)
    {
        let notifier = SystemdNotifier()
        let loaded: LoadedGateway
        switch GatewayConfigLoader.load(path: configPath, environment: environment) {
        case .success(let ok): loaded = ok
        case .failure(let error):
            throw StartFailure(
                exitCode: 78, description: error.problems.map { $0.formatted(file: configPath) }.joined(separator: "\n"))
        }
        for warning in loaded.warnings { logger.warning("\(warning.formatted(file: configPath))") }

        let lockFile = StateFile(path: loaded.stateDirectory + "/" + FileGatewayStore.spendFileName)
        let lock: StateFileLock
        do {
            try lockFile.prepareDirectory()
            lock = try lockFile.lock()
        } catch {
            throw StartFailure(exitCode: error.code == .locked ? 75 : 78, description: error.description)
        }
        let store: FileGatewayStore
        do {
            let opened = try FileGatewayStore.open(directory: loaded.stateDirectory)
            store = opened.store
            if opened.opening.chargedReservations > .zero {
                logger.warning(
                    "the previous run stopped with requests in flight; their reservations (\(opened.opening.chargedReservations) \(loaded.configuration.currency)) are charged in full",
                    metadata: ["event": "reservations-charged"])
            }
        } catch {
            throw StartFailure(exitCode: 78, description: "cannot use the state in \(loaded.stateDirectory): \(error)")
        }

        let tls: TLSContextHolder?
        if let files = loaded.configuration.tls {
            do {
                tls = TLSContextHolder(try TLSContextHolder.context(certificatePath: files.certificate, keyPath: files.key))
            } catch {
                throw StartFailure(exitCode: 78, description: "cannot load the TLS certificate or key: \(error)")
            }
        } else {
            tls = nil
        }

        let upstream = Upstream(configuration: loaded.configuration)
        let responder = GatewayResponder(
            loaded: loaded, store: store, upstream: upstream, alerts: BudgetAlerts(logger: logger), logger: logger)
        let admin = AdminResponder(gateway: responder, logger: logger)
        let readiness = Readiness(expected: loaded.configuration.listeners.count + 1)

        var services: [any Service] = []
        for listener in loaded.configuration.listeners {
            let address: BindAddress
            let unixPath: String?
            switch listener {
            case .tcp(let host, let port):
                address = .hostname(host, port: port)
                unixPath = nil
            case .unix(let path):
                address = .unixDomainSocket(path: path)
                unixPath = path
            }
            let app = Application(
                responder: CallbackResponder { request, context in await responder.respond(to: request, context: context) },
                server: .gateway(tls: unixPath == nil ? tls : nil),
                configuration: .init(address: address, serverName: nil, backlog: 4096),
                onServerRunning: { _ in
                    // Anyone may connect; who they are (SO_PEERCRED) decides what they get.
                    if let unixPath { _ = chmod(unixPath, 0o666) }
                    await readiness.arrived()
                },
                logger: quiet(logger))
            services.append(app)
        }
        let adminPath = loaded.adminSocket
        _ = try? FileManager.default.createDirectory(
            atPath: (adminPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let adminApp = Application(
            responder: CallbackResponder { request, context in await admin.respond(to: request, context: context) },
            server: .gateway(tls: nil),
            configuration: .init(address: .unixDomainSocket(path: adminPath)),
            onServerRunning: { _ in
                // Any local user may connect; only root and admin_users get an answer.
                _ = chmod(adminPath, 0o666)
                await readiness.arrived()
            },
            logger: quiet(logger))
        services.append(adminApp)

        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint],
                logger: quiet(logger)))

        let background = Task {
            await readiness.wait()
            let keys = await store.keys().count
            logger.notice(
                "keyrotd-gateway ready: \(summary(loaded))",
                metadata: ["event": "started", "keys": .stringConvertible(keys)])
            notifier.ready(status: summary(loaded))
            await withTaskGroup(of: Void.self) { tasks in
                if let interval = notifier.watchdogPingInterval {
                    tasks.addTask {
                        while !Task.isCancelled {
                            notifier.watchdogPing()
                            try? await Task.sleep(for: interval)
                        }
                    }
                }
                tasks.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) {
                        notifier.reloading(status: "reloading \(configPath)")
                        reload(configPath: configPath, environment: environment, responder: responder, tls: tls, logger: logger)
                        notifier.ready(status: summary(responder.loaded))
                    }
                }
                await tasks.waitForAll()
            }
        }
        do {
            try await group.run()
        } catch {
            background.cancel()
            await upstream.shutdown()
            throw StartFailure(exitCode: 71, description: "the server stopped: \(error)")
        }
        notifier.stopping(status: "stopping")
        background.cancel()
        await upstream.shutdown()
        logger.notice("keyrotd-gateway stopped", metadata: ["event": "stopped"])
        // Held until here: another gateway on this state directory must wait for us.
        lock.release()
    }

    static func summary(_ loaded: LoadedGateway) -> String {
        "serving \(loaded.configuration.listeners.map(\.description).joined(separator: ", ")); \(loaded.configuration.roles.count) roles, \(loaded.configuration.clients.count) clients"
    }

    /// SIGHUP: a valid configuration replaces the running one for new requests (and new
    /// TLS connections); an invalid one is logged, problem by problem, and changes nothing.
    static func reload(
        configPath: String, environment: [String: String], responder: GatewayResponder, tls: TLSContextHolder?,
        logger: Logger
    ) {
        let before = responder.loaded
        switch GatewayConfigLoader.load(path: configPath, environment: environment) {
        case .failure(let error):
            for problem in error.problems {
                logger.error("\(problem.formatted(file: configPath))", metadata: ["event": "reload-refused"])
            }
            logger.error(
                "configuration not reloaded: \(error.problems.count) problem(s); the running configuration stays",
                metadata: ["event": "reload-refused"])
            return
        case .success(let loaded):
            var kept: [String] = []
            if loaded.configuration.listeners != before.configuration.listeners { kept.append("listen") }
            if loaded.adminSocket != before.adminSocket { kept.append("admin_socket") }
            if loaded.stateDirectory != before.stateDirectory { kept.append("state_directory") }
            if loaded.configuration.upstream != before.configuration.upstream { kept.append("upstream") }
            if (loaded.configuration.tls == nil) != (before.configuration.tls == nil) { kept.append("TLS on or off") }
            var next = loaded
            next.configuration.listeners = before.configuration.listeners
            next.adminSocket = before.adminSocket
            next.stateDirectory = before.stateDirectory
            next.configuration.upstream = before.configuration.upstream
            if let tls, let files = loaded.configuration.tls {
                do {
                    tls.replace(with: try TLSContextHolder.context(certificatePath: files.certificate, keyPath: files.key))
                } catch {
                    logger.error(
                        "configuration not reloaded: cannot load the TLS certificate or key: \(error)",
                        metadata: ["event": "reload-refused"])
                    return
                }
            }
            responder.replace(next)
            if !kept.isEmpty {
                logger.warning(
                    "changes to \(kept.joined(separator: ", ")) take effect at the next restart",
                    metadata: ["event": "reload-partial"])
            }
            logger.notice(
                "configuration reloaded: \(loaded.configuration.roles.count) roles, \(loaded.configuration.clients.count) clients",
                metadata: ["event": "reloaded"])
        }
    }

    /// Hummingbird and service-lifecycle narrate at info level ("Server started…"); the
    /// gateway says what matters itself.
    static func quiet(_ logger: Logger) -> Logger {
        var quiet = logger
        quiet.logLevel = .warning
        return quiet
    }
}

/// Counts listeners that are up; the gateway is ready when all are.
actor Readiness {
    private let expected: Int
    private var count = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(expected: Int) {
        self.expected = expected
    }

    func arrived() {
        count += 1
        if count >= expected {
            for waiter in waiters { waiter.resume() }
            waiters = []
        }
    }

    func wait() async {
        if count >= expected { return }
        await withCheckedContinuation { waiters.append($0) }
    }
}

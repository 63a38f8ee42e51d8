import Foundation
import KeyRotation
import KeyRotationAdapters
import Logging

/// The control socket's side of the loop: requests arrive as loop events, so
/// the one loop that owns the machines is the only writer of the state.
extension Daemon {
    /// Opens the control socket; its requests wait in the loop's stream until `run` reads them.
    func listen() throws(DaemonFailure) {
        let path = configuration.daemon.resolvedControlSocket(environment: options.environment)
        let continuation = self.continuation
        do {
            control = try ControlServer.start(path: path, logger: logger) { request, peer, responder in
                continuation.yield(.control(request, peer, responder))
            }
        } catch {
            throw DaemonFailure(
                exitCode: error.code == .permissionDenied ? 77 : 78,
                description: "\(error) (set [daemon] control_socket to a path keyrotd may create)")
        }
    }

    func handle(_ request: ControlRequest, from peer: ControlPeer, _ responder: ControlResponder, group: inout TaskGroup<Void>) {
        if let problem = request.fieldProblem {
            logger.warning(
                "control: \(request.command.rawValue) refused: \(problem.message)",
                metadata: ["event": "control-request", "command": "\(request.command.rawValue)", "peer_uid": "\(peer.uid)"])
            responder.fail(problem)
            return
        }
        if request.command != .ping && request.command != .status {
            var metadata: Logger.Metadata = [
                "event": "control-request", "command": "\(request.command.rawValue)", "peer_uid": "\(peer.uid)",
            ]
            if let key = request.key { metadata["key"] = "\(key)" }
            if let id = request.keyID { metadata["key_id"] = "\(id)" }
            let target = request.key ?? request.keyID
            logger.notice(
                "control: \(request.command.rawValue)\(target.map { " \($0)" } ?? "") requested by uid \(peer.uid) (pid \(peer.pid))",
                metadata: metadata)
        }
        if draining && request.command != .ping && request.command != .status {
            responder.fail(ControlError(code: "shutting_down", message: "keyrotd is stopping; try again once it is back"))
            return
        }
        switch request.command {
        case .ping:
            responder.reply(ControlResponse(result: ControlPong(pid: getpid(), keys: machines.count)))
        case .status:
            let progress = machines.keys.sorted().compactMap { machines[$0].map { KeyProgress(record: $0.record) } }
            responder.reply(ControlResponse(result: progress))
        case .rotate, .revoke:
            operatorRequest(request, responder, group: &group)
        case .audit:
            startAudit(requester: responder, group: &group)
        case .deleteOrphan:
            guard let id = request.keyID, !id.isEmpty else {
                responder.fail(ControlError(code: "bad_request", message: "delete-orphan needs key_id"))
                return
            }
            lookUpOrphan(id, responder, group: &group)
        }
    }

    private func operatorRequest(_ request: ControlRequest, _ responder: ControlResponder, group: inout TaskGroup<Void>) {
        guard let name = request.key, !name.isEmpty else {
            responder.fail(ControlError(code: "bad_request", message: "\(request.command.rawValue) needs key"))
            return
        }
        guard machines[name] != nil, !removing.contains(name) else {
            let known = machines.keys.filter { !removing.contains($0) }.sorted().joined(separator: ", ")
            responder.fail(ControlError(
                code: "unknown_key", message: "no managed key named \(name) (managed: \(known.isEmpty ? "none" : known))"))
            return
        }
        let revoke = request.command == .revoke
        let refusals = feed(name, revoke ? .revokeRequested : .rotateRequested, group: &group, continuation: continuation)
        if let reason = refusals.first {
            responder.fail(ControlError(code: "refused", message: reason))
            return
        }
        guard let record = machines[name]?.record else { return }
        let message: String
        if revoke {
            message = record.revokeQueued
                ? "revoke: the old key is deleted now, then a second emergency rotation replaces the key deployed before the request"
                : "revoke: rotating now; the old key is deleted as soon as the new one is verified and deployed"
        } else {
            message = record.phase == .creating
                ? "rotation started (generation \(record.pending?.generation ?? record.generation + 1))"
                : "retrying the blocked step now (\(record.phase.rawValue))"
        }
        responder.reply(ControlResponse(result: KeyProgress(record: record, message: message)))
    }
}

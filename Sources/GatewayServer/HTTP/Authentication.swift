import Crypto
import GatewayCore
import Glibc
import Hummingbird

/// Who is calling, and with which role.
struct Caller: Sendable {
    var client: Client
    var role: Role
}

enum Authentication {
    /// A TCP caller is its bearer token's client; a unix-socket caller is the client
    /// naming its user, else one naming one of its groups. Tokens are kept only as
    /// SHA-256 and compared against every client's digest without stopping at a match,
    /// so the time taken says nothing about which bytes matched.
    static func identify(_ request: Request, _ context: GatewayContext, _ loaded: LoadedGateway) async
        -> Result<Caller, GatewayErrorResponse>
    {
        let client: Client?
        if context.isUnixSocket {
            guard let peer = await PeerCredentials.of(context.channel) else {
                return .failure(unauthorized("the caller's credentials could not be read from the socket"))
            }
            client = loaded.userClients[peer.uid] ?? {
                let groups = Accounts.groups(ofUser: peer.uid).union([peer.gid])
                return loaded.groupClients.first { groups.contains($0.gid) }?.client
            }()
            guard let client else {
                return .failure(unauthorized("no client is configured for Unix user id \(peer.uid) or its groups"))
            }
            return caller(client, loaded)
        }
        guard let header = request.headers[.authorization] else {
            return .failure(unauthorized("missing Authorization header: send Authorization: Bearer TOKEN"))
        }
        let scheme = "bearer "
        guard header.count > scheme.count, header.prefix(scheme.count).lowercased() == scheme else {
            return .failure(unauthorized("the Authorization header is not a bearer token"))
        }
        let token = header.dropFirst(scheme.count).trimmingPrefix(while: { $0 == " " })
        let digest = Array(SHA256.hash(data: Array(token.utf8)))
        var found: Client?
        for candidate in loaded.tokenClients {
            var difference: UInt8 = 0
            for index in 0..<32 { difference |= candidate.digest[index] ^ digest[index] }
            if difference == 0, found == nil { found = candidate.client }
        }
        guard let found else { return .failure(unauthorized("unknown token")) }
        return caller(found, loaded)
    }

    private static func caller(_ client: Client, _ loaded: LoadedGateway) -> Result<Caller, GatewayErrorResponse> {
        guard let role = loaded.configuration.roles[client.role] else {
            // The parser refuses this; kept as an answer rather than a crash.
            return .failure(unauthorized("client \(client.name) has no role"))
        }
        return .success(Caller(client: client, role: role))
    }

    static func unauthorized(_ message: String) -> GatewayErrorResponse {
        GatewayErrorResponse(status: 401, message: message, type: "authentication_error", code: "unauthorized")
    }
}

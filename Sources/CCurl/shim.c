// The typed setopt wrappers are static inline in CCurl.h; the socket guard is here.
#include "CCurl.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static int keyrotd_is_loopback(const struct sockaddr *address) {
    if (address->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
        return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    }
    if (address->sa_family == AF_INET6) {
        const struct in6_addr *v6 = &((const struct sockaddr_in6 *)address)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(v6)) return 1;
        return IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127;
    }
    return 0;
}

curl_socket_t keyrotd_guarded_opensocket(void *context, curlsocktype purpose, struct curl_sockaddr *address) {
    struct keyrotd_socket_guard *guard = context;
    if (guard == NULL || purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
    if (guard->loopback_only && !keyrotd_is_loopback(&address->addr)) {
        guard->refused = 1;
        return CURL_SOCKET_BAD;
    }
    // Close-on-exec: a hook started while a transfer is open must not inherit it.
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

#ifndef KEYROTD_CUNIXSOCKET_H
#define KEYROTD_CUNIXSOCKET_H

// The socket calls Swift's Glibc module hides: accept4(2) and struct ucred need
// _GNU_SOURCE, which that module is built without. shim.c defines it; this header
// uses plain types only, so no GNU declaration leaks into Swift.

#include <sys/types.h>

// accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK): the new descriptor
// is close-on-exec from birth, so a hook spawned meanwhile never inherits it.
int keyrotd_accept_cloexec_nonblocking(int listener);

// getsockopt(SO_PEERCRED): the peer's pid, uid and gid as they were at connect(2).
// 0, or -1 with errno set.
int keyrotd_peer_credentials(int socket, pid_t *pid, uid_t *uid, gid_t *gid);
// struct ucred's layout under a name Swift can see (for getsockopt(SO_PEERCRED)
// through SwiftNIO's socket-option API).
struct keyrotd_ucred {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

#endif

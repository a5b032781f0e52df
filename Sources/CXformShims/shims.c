// Wrappers for calls and constants that glibc declares only under _GNU_SOURCE. This file is
// compiled with _GNU_SOURCE (Package.swift); the header that Swift imports is not.
#include "CXformShims.h"

const short CXF_POSIX_SPAWN_SETSID = POSIX_SPAWN_SETSID;

int cxf_accept4(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int cxf_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

pid_t cxf_gettid(void) { return gettid(); }

// ---- XformDaemon additions (keep this block at the end of the file) ----
int cxform_daemon_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
short cxform_daemon_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }
// ---- end XformDaemon additions ----

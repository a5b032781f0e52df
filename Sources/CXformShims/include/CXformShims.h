#ifndef CXFORM_SHIMS_H
#define CXFORM_SHIMS_H
// Linux headers that Glibc's Swift module does not export. Built with _GNU_SOURCE.
//
// Swift cannot import function-like macros or some enum-valued flags, so this header adds
// `CXF_`-prefixed constants and tiny `static inline` wrappers. Shared by the reactor and the
// daemon support: keep it a superset.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdint.h>
#include <time.h>

// epoll
static const uint32_t CXF_EPOLLIN = EPOLLIN;
static const uint32_t CXF_EPOLLOUT = EPOLLOUT;
static const uint32_t CXF_EPOLLERR = EPOLLERR;
static const uint32_t CXF_EPOLLHUP = EPOLLHUP;
static const uint32_t CXF_EPOLLRDHUP = EPOLLRDHUP;
static const uint32_t CXF_EPOLLET = EPOLLET;
static const uint32_t CXF_EPOLLONESHOT = EPOLLONESHOT;
static const uint32_t CXF_EPOLLEXCLUSIVE = EPOLLEXCLUSIVE;
static const int CXF_EPOLL_CLOEXEC = EPOLL_CLOEXEC;
static const int CXF_EPOLL_CTL_ADD = EPOLL_CTL_ADD;
static const int CXF_EPOLL_CTL_MOD = EPOLL_CTL_MOD;
static const int CXF_EPOLL_CTL_DEL = EPOLL_CTL_DEL;

// eventfd, timerfd, signalfd flags
static const int CXF_EFD_CLOEXEC = EFD_CLOEXEC;
static const int CXF_EFD_NONBLOCK = EFD_NONBLOCK;
static const int CXF_EFD_SEMAPHORE = EFD_SEMAPHORE;
static const int CXF_TFD_CLOEXEC = TFD_CLOEXEC;
static const int CXF_TFD_NONBLOCK = TFD_NONBLOCK;
static const int CXF_TFD_TIMER_ABSTIME = TFD_TIMER_ABSTIME;
static const int CXF_SFD_CLOEXEC = SFD_CLOEXEC;
static const int CXF_SFD_NONBLOCK = SFD_NONBLOCK;

// sockets
static const int CXF_SOCK_STREAM = SOCK_STREAM;
static const int CXF_SOCK_DGRAM = SOCK_DGRAM;
static const int CXF_SOCK_NONBLOCK = SOCK_NONBLOCK;
static const int CXF_SOCK_CLOEXEC = SOCK_CLOEXEC;
static const int CXF_MSG_NOSIGNAL = MSG_NOSIGNAL;
static const int CXF_SHUT_RD = SHUT_RD;
static const int CXF_SHUT_WR = SHUT_WR;
static const int CXF_SHUT_RDWR = SHUT_RDWR;

// flock, pipe2, spawn
static const int CXF_LOCK_SH = LOCK_SH;
static const int CXF_LOCK_EX = LOCK_EX;
static const int CXF_LOCK_NB = LOCK_NB;
static const int CXF_LOCK_UN = LOCK_UN;
static const int CXF_O_CLOEXEC = O_CLOEXEC;
static const int CXF_O_NONBLOCK = O_NONBLOCK;
// Needs _GNU_SOURCE, which only shims.c sees (Swift imports this header without it).
extern const short CXF_POSIX_SPAWN_SETSID;
static const short CXF_POSIX_SPAWN_SETSIGMASK = POSIX_SPAWN_SETSIGMASK;
static const short CXF_POSIX_SPAWN_SETSIGDEF = POSIX_SPAWN_SETSIGDEF;

/// epoll_create1(EPOLL_CLOEXEC).
static inline int cxf_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

/// epoll_ctl with the event mask and 64-bit token packed into an epoll_event (which is packed on x86_64).
static inline int cxf_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &ev);
}

/// The size of one epoll_event, for allocating event arrays from Swift.
static inline size_t cxf_epoll_event_size(void) { return sizeof(struct epoll_event); }

/// epoll_wait into a raw array of `maxevents` epoll_events.
static inline int cxf_epoll_wait(int epfd, void *events, int maxevents, int timeout_ms) {
    return epoll_wait(epfd, (struct epoll_event *)events, maxevents, timeout_ms);
}

/// The event mask of the i-th epoll_event of a raw array.
static inline uint32_t cxf_epoll_event_events(const void *events, int i) {
    return ((const struct epoll_event *)events)[i].events;
}

/// The 64-bit token of the i-th epoll_event of a raw array.
static inline uint64_t cxf_epoll_event_token(const void *events, int i) {
    return ((const struct epoll_event *)events)[i].data.u64;
}

/// A non-blocking, close-on-exec eventfd starting at zero.
static inline int cxf_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

/// A non-blocking, close-on-exec signalfd for `mask`.
static inline int cxf_signalfd(const sigset_t *mask) { return signalfd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC); }

/// The size of one signalfd_siginfo record.
static inline size_t cxf_signalfd_siginfo_size(void) { return sizeof(struct signalfd_siginfo); }

/// The signal number in a signalfd_siginfo record.
static inline uint32_t cxf_signalfd_siginfo_signo(const void *info) {
    return ((const struct signalfd_siginfo *)info)->ssi_signo;
}

/// A non-blocking, close-on-exec monotonic timerfd.
static inline int cxf_timerfd_create(void) {
    return timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
}

/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC (in shims.c: needs _GNU_SOURCE).
int cxf_accept4(int fd, struct sockaddr *addr, socklen_t *len);

/// socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0).
static inline int cxf_socket_nonblocking(int domain, int type) {
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/// pipe2 with the given flags, e.g. O_CLOEXEC (in shims.c: needs _GNU_SOURCE).
int cxf_pipe2(int fds[2], int flags);

/// The calling thread's kernel thread id (in shims.c: needs _GNU_SOURCE).
pid_t cxf_gettid(void);

// ---- XformDaemon additions (keep this block at the end of the file) ----
// Implemented in shims.c, which is compiled with _GNU_SOURCE; declared here without glibc's
// headers so Swift sees them even though Glibc's module was built without _GNU_SOURCE.

/// pipe2(fds, O_CLOEXEC). Returns 0 or -1 with errno set.
int cxform_daemon_pipe_cloexec(int fds[2]);
/// The POSIX_SPAWN_SETSID flag for posix_spawnattr_setflags (glibc >= 2.26).
short cxform_daemon_spawn_setsid_flag(void);
// ---- end XformDaemon additions ----

#endif

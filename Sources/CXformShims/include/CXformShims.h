#ifndef CXFORM_SHIMS_H
#define CXFORM_SHIMS_H
// Linux headers that Glibc's Swift module does not export. Built with _GNU_SOURCE.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>
#include <fcntl.h>

// ---- XformDaemon additions (keep this block at the end of the file) ----
// Implemented in shims.c, which is compiled with _GNU_SOURCE; declared here without glibc's
// headers so Swift sees them even though Glibc's module was built without _GNU_SOURCE.

/// pipe2(fds, O_CLOEXEC). Returns 0 or -1 with errno set.
int cxform_daemon_pipe_cloexec(int fds[2]);
/// The POSIX_SPAWN_SETSID flag for posix_spawnattr_setflags (glibc >= 2.26).
short cxform_daemon_spawn_setsid_flag(void);
// ---- end XformDaemon additions ----

#endif

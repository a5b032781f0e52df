#include "CXformShims.h"

// ---- XformDaemon additions (keep this block at the end of the file) ----
int cxform_daemon_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
short cxform_daemon_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }
// ---- end XformDaemon additions ----
